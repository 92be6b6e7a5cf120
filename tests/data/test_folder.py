import os

import cv2
import numpy as np
import pytest
from PIL import Image

from segkit.config import get_cfg
from segkit.data import build_dataset
from segkit.data.folder import image_samples, list_file_samples, paired_samples


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))


def write_pair(root, split, stem, label, image_dir="{split}", label_dir="{split}annot", mode="gray"):
    idir = os.path.join(root, image_dir.format(split=split))
    ldir = os.path.join(root, label_dir.format(split=split))
    os.makedirs(idir, exist_ok=True)
    os.makedirs(ldir, exist_ok=True)
    h, w = label.shape[:2]
    cv2.imwrite(os.path.join(idir, f"{stem}.jpg"), np.full((h, w, 3), 100, np.uint8))
    path = os.path.join(ldir, f"{stem}.png")
    if mode == "gray":
        cv2.imwrite(path, label)
    elif mode == "pil_palette":
        im = Image.fromarray(label, mode="P")
        im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
        im.save(path)
    else:  # RGB colour image, label is HxWx3 RGB
        cv2.imwrite(path, label[..., ::-1])
    return path


def folder_cfg(root, names=("a", "b", "c"), **kw):
    cfg = get_cfg()
    cfg.DATASET.NAME = "folder"
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.CLASS_NAMES = list(names)
    for k, v in kw.items():
        setattr(cfg.DATASET, k, v)
    return cfg


def test_paired_directories(tmp_path):
    lab = np.array([[0, 1, 2, 255]] * 4, np.uint8)
    write_pair(tmp_path, "train", "x1", lab)
    write_pair(tmp_path, "train", "x2", lab[:, ::-1].copy())
    ds = build_dataset(folder_cfg(tmp_path), "train", train=False)
    assert len(ds) == 2 and ds.num_classes == 3 and ds.has_labels and len(ds.palette) == 3
    item = ds[1]
    assert item["name"] == "x2" and item["path"].endswith("x2.jpg")
    np.testing.assert_array_equal(item["label"].numpy(), lab[:, ::-1])


def test_list_file(tmp_path):
    lab = np.array([[0, 2], [1, 255]], np.uint8)
    write_pair(tmp_path, "s", "p", lab, image_dir="img", label_dir="ann")
    write_pair(tmp_path, "s", "q", lab, image_dir="img", label_dir="ann")
    (tmp_path / "train.txt").write_text("img/q.jpg ann/q.png\n\nimg/p.jpg ann/p.png\n")
    ds = build_dataset(folder_cfg(tmp_path, LIST_FILE="{split}.txt"), "train", train=False)
    assert [s.name for s in ds.samples] == ["q", "p"]
    np.testing.assert_array_equal(ds[1]["label"].numpy(), lab)
    (tmp_path / "val.txt").write_text("img/p.jpg ann/missing.png\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        build_dataset(folder_cfg(tmp_path, LIST_FILE="{split}.txt"), "val")


def test_indexed_palette_png_gives_indices(tmp_path):
    lab = np.array([[0, 1], [2, 1]], np.uint8)
    write_pair(tmp_path, "train", "x", lab, mode="pil_palette")
    ds = build_dataset(folder_cfg(tmp_path), "train", train=False)
    np.testing.assert_array_equal(ds[0]["label"].numpy(), lab)


def test_colour_labels_decoded_through_palette(tmp_path):
    pal = [[10, 20, 30], [200, 0, 0], [0, 0, 255], [0, 0, 0]]  # 4th colour: void
    ids = np.array([[0, 1, 2], [3, 2, 1]])
    write_pair(tmp_path, "train", "x", np.array(pal, np.uint8)[ids], mode="rgb")
    cfg = folder_cfg(tmp_path, PALETTE=pal, LABEL_MAPPING=[[3, 255]])
    ds = build_dataset(cfg, "train", train=False)
    np.testing.assert_array_equal(ds[0]["label"].numpy(), [[0, 1, 2], [255, 2, 1]])
    assert ds.palette == [(10, 20, 30), (200, 0, 0), (0, 0, 255)]
    bad = np.array(pal, np.uint8)[ids]
    bad[0, 0] = (1, 2, 3)
    path = write_pair(tmp_path, "val", "y", bad, mode="rgb")
    with pytest.raises(ValueError, match=r"y\.png.*\(1, 2, 3\)"):
        build_dataset(cfg, "val")
    assert os.path.exists(path)


def test_value_outside_classes_names_file_and_values(tmp_path):
    write_pair(tmp_path, "train", "good", np.array([[0, 1]], np.uint8))
    write_pair(tmp_path, "train", "bad", np.array([[0, 7], [9, 255]], np.uint8))
    with pytest.raises(ValueError, match=r"bad\.png: \[7, 9\]"):
        build_dataset(folder_cfg(tmp_path), "train")
    # Off: the dataset builds and the stray values become ignore, never an id the loss cannot take.
    ds = build_dataset(folder_cfg(tmp_path, CHECK_LABELS=False), "train", train=False)
    assert set(ds[0]["label"].unique().tolist()) <= {0, 1, 2, 255}


def test_mapping_applied(tmp_path):
    write_pair(tmp_path, "train", "x", np.array([[10, 20, 30, 99]], np.uint8))
    cfg = folder_cfg(tmp_path, LABEL_MAPPING=[[10, 2], [20, 0], [30, 1], [99, 255]])
    np.testing.assert_array_equal(build_dataset(cfg, "train", train=False)[0]["label"].numpy(), [[2, 0, 1, 255]])
    with pytest.raises(ValueError, match="LABEL_MAPPING maps 5 to 7"):
        build_dataset(folder_cfg(tmp_path, LABEL_MAPPING=[[5, 7]]), "train")


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset root not found"):
        build_dataset(folder_cfg(tmp_path / "none"), "train")
    write_pair(tmp_path, "train", "x", np.zeros((2, 2), np.uint8))
    cv2.imwrite(str(tmp_path / "train" / "lonely.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="lonely"):
        build_dataset(folder_cfg(tmp_path), "train")
    with pytest.raises(ValueError, match="CLASS_NAMES"):
        build_dataset(folder_cfg(tmp_path, names=()), "train")
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        build_dataset(folder_cfg(tmp_path), "val")


def test_unlabelled_test_split(tmp_path):
    os.makedirs(tmp_path / "test")
    cv2.imwrite(str(tmp_path / "test" / "t.png"), np.zeros((3, 5, 3), np.uint8))
    ds = build_dataset(folder_cfg(tmp_path), "test")
    assert not ds.has_labels and (ds[0]["label"] == 255).all()


def test_sample_discovery_when_not_strict(tmp_path):
    write_pair(tmp_path, "train", "x", np.zeros((2, 2), np.uint8))
    cv2.imwrite(str(tmp_path / "train" / "y.png"), np.zeros((2, 2, 3), np.uint8))
    samples = paired_samples(str(tmp_path / "train"), str(tmp_path / "trainannot"), strict=False)
    assert [(s.name, s.label is None) for s in samples] == [("x", False), ("y", True)]
    (tmp_path / "l.txt").write_text("train/x.jpg trainannot/x.png\ntrain/y.png trainannot/y.png\n")
    assert list_file_samples(str(tmp_path / "l.txt"), str(tmp_path), strict=False)[1].label is None
    assert [s.name for s in image_samples(str(tmp_path / "train"))] == ["x", "y"]
    assert image_samples(str(tmp_path / "train" / "y.png"))[0].label is None
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    skipped: list[str] = []
    assert [s.name for s in image_samples(str(tmp_path / "train"), skipped=skipped)] == ["x", "y"]
    assert skipped == [str(tmp_path / "train" / "notes.txt")]


def test_a_labelled_split_expects_labels_even_when_none_is_there(tmp_path):
    # What tools/check_dataset.py reads: images with no label at all are not an unlabelled split.
    lab = np.zeros((2, 2), np.uint8)
    write_pair(tmp_path, "val", "p", lab, image_dir="img", label_dir="ann")
    os.remove(tmp_path / "ann" / "p.png")
    (tmp_path / "val.txt").write_text("img/p.jpg ann/p.png\n")
    (tmp_path / "test.txt").write_text("img/p.jpg\n")
    cfg = folder_cfg(tmp_path, LIST_FILE="{split}.txt")
    unchecked = build_dataset(cfg, "val", strict=False)
    assert unchecked.expects_labels and not unchecked.has_labels
    assert not build_dataset(cfg, "test").expects_labels
    os.makedirs(tmp_path / "valannot")
    write_pair(tmp_path, "val", "p", lab)
    os.remove(tmp_path / "valannot" / "p.png")
    assert build_dataset(folder_cfg(tmp_path), "val", strict=False).expects_labels


def test_paired_folders_take_every_suffix_opencv_reads(tmp_path):
    # .ppm and .gif were left out by the folder dataset's own, shorter list; the shared one has them.
    for stem, ext in (("p", ".ppm"), ("g", ".gif"), ("j", ".jpg")):
        os.makedirs(tmp_path / "img", exist_ok=True)
        cv2.imwrite(str(tmp_path / "img" / f"{stem}{ext}"), np.full((4, 6, 3), 100, np.uint8))
    (tmp_path / "img" / "README.txt").write_text("not an image")
    assert [s.name for s in paired_samples(str(tmp_path / "img"), None)] == ["g", "j", "p"]
