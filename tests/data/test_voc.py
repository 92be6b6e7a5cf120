import numpy as np
import pytest

from segkit.data import build_dataset
from segkit.data.voc import CLASS_NAMES, PALETTE, voc_table
from tests.data.tiny import write_tiny_dataset


def test_table_classes_and_palette():
    table = voc_table(ignore_index=255)
    assert (table[:21] == np.arange(21)).all() and table[255] == 255 and (table[21:255] == -1).all()
    assert len(CLASS_NAMES) == 21 and CLASS_NAMES[0] == "background" and CLASS_NAMES[15] == "person"
    # The devkit's colours: background black, aeroplane (128, 0, 0), person (192, 128, 128).
    assert PALETTE[0] == (0, 0, 0) and PALETTE[1] == (128, 0, 0) and PALETTE[15] == (192, 128, 128)


def test_train_reads_the_augmented_set_and_val_the_official_masks(tmp_path):
    cfg = write_tiny_dataset("voc_aug", tmp_path / "VOC2012")
    train = build_dataset(cfg, "train", train=False)
    assert all("/SegmentationClassAug/" in s.label for s in train.samples)
    val = build_dataset(cfg, "val", train=False)
    assert all("/SegmentationClass/" in s.label for s in val.samples)
    # Indexed PNGs are read as their indices, not their colours; 255 boundaries are ignored.
    assert set(np.unique(val[0]["label"].numpy())) <= {0, 1, 15, 20, 255}
    assert not build_dataset(cfg, "test", train=False).has_labels


def test_mmsegmentation_lists(tmp_path):
    """mmsegmentation's aug.txt holds only the SBD images outside VOC train and val: training joins it with
    the official train.txt, each read from its own label folder."""
    cfg = write_tiny_dataset("voc_aug", tmp_path / "VOC2012")
    lists = tmp_path / "VOC2012" / "ImageSets" / "Segmentation"
    (lists / "train_aug.txt").rename(lists / "aug.txt")
    (lists / "train.txt").write_text((lists / "val.txt").read_text())  # ids that have SegmentationClass masks
    train = build_dataset(cfg, "train", train=False)
    folders = [s.label.split("/")[-2] for s in train.samples]
    assert folders == ["SegmentationClass"] * 2 + ["SegmentationClassAug"] * 2
    # The list named as a split is the SBD images alone, with their SBD masks.
    assert {s.label.split("/")[-2] for s in build_dataset(cfg, "aug", train=False).samples} == {"SegmentationClassAug"}
    (lists / "aug.txt").unlink()
    with pytest.raises(FileNotFoundError, match="train_aug.txt"):
        build_dataset(cfg, "train", train=False)
