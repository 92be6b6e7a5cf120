import os

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as CS_LABELS

from segkit.config import get_cfg
from segkit.data import build_dataset
from segkit.data.cityscapes import CLASS_NAMES, PALETTE, find_samples, label_id_to_train_id, train_id_to_label_id


def make_cityscapes(root, split="train", city="aachen", names=("aachen_000000_000019",), label_ids=None,
                    with_labels=True):
    idir = os.path.join(root, "leftImg8bit", split, city)
    ldir = os.path.join(root, "gtFine", split, city)
    os.makedirs(idir, exist_ok=True)
    os.makedirs(ldir, exist_ok=True)
    if label_ids is None:
        label_ids = (np.arange(40) % 34).astype(np.uint8).reshape(4, 10)  # every official id 0..33
    for n in names:
        img = np.dstack([label_ids] * 3).astype(np.uint8)
        cv2.imwrite(os.path.join(idir, f"{n}_leftImg8bit.png"), img)
        if with_labels:
            cv2.imwrite(os.path.join(ldir, f"{n}_gtFine_labelIds.png"), label_ids)
            trainids = label_id_to_train_id().astype(np.uint8)[label_ids]
            cv2.imwrite(os.path.join(ldir, f"{n}_gtFine_labelTrainIds.png"), trainids)
    return label_ids


def cfg_for(root, **kw):
    cfg = get_cfg()
    cfg.DATASET.ROOT = str(root)
    for k, v in kw.items():
        setattr(cfg.DATASET, k, v)
    return cfg


def expected_train_ids(label_ids):
    table = {lab.id: (lab.trainId if 0 <= lab.trainId < 255 else 255) for lab in CS_LABELS}
    return np.vectorize(lambda v: table.get(int(v), 255))(label_ids)


@pytest.mark.parametrize("label_type", ["labelIds", "labelTrainIds"])
def test_every_label_id_maps_to_its_train_id(tmp_path, label_type):
    ids = make_cityscapes(tmp_path)
    ds = build_dataset(cfg_for(tmp_path, LABEL_TYPE=label_type), "train", train=False)
    item = ds[0]
    assert item["label"].dtype.is_floating_point is False and str(item["label"].dtype) == "torch.int64"
    np.testing.assert_array_equal(item["label"].numpy(), expected_train_ids(ids))
    assert item["name"] == "aachen_000000_000019"
    assert item["image"].shape == (3, 4, 10)
    assert ds.num_classes == 19 and ds.has_labels and ds.class_names[0] == "road" and ds.class_names[-1] == "bicycle"
    assert ds.palette[0] == (128, 64, 128) and len(ds.palette) == 19
    np.testing.assert_array_equal(ds.train_id_to_label_id, train_id_to_label_id())  # exports write labelIds


def test_tables_and_export_round_trip():
    lut = label_id_to_train_id()
    back = train_id_to_label_id()
    assert back.dtype == np.uint8 and back.shape == (256,)
    for t in range(19):
        assert lut[back[t]] == t
    assert lut[0] == 255 and lut[7] == 0 and lut[33] == 18 and lut[255] == 255
    assert len(CLASS_NAMES) == len(PALETTE) == 19


def test_missing_root_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_dataset(cfg_for(tmp_path / "nowhere"), "train")


def test_split_without_images_names_path(tmp_path):
    os.makedirs(tmp_path / "leftImg8bit" / "val" / "x")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "leftImg8bit" / "val")):
        build_dataset(cfg_for(tmp_path), "val")
    with pytest.raises(FileNotFoundError, match="train"):
        build_dataset(cfg_for(tmp_path), "train")


def test_image_without_label_names_label_path(tmp_path):
    make_cityscapes(tmp_path)
    make_cityscapes(tmp_path, names=("aachen_000001_000019",), with_labels=False)
    with pytest.raises(FileNotFoundError, match="aachen_000001_000019_gtFine_labelIds.png"):
        build_dataset(cfg_for(tmp_path), "train")


def test_test_split_needs_no_labels(tmp_path):
    make_cityscapes(tmp_path, split="test", city="berlin", names=("berlin_000000_000019",), with_labels=False)
    ds = build_dataset(cfg_for(tmp_path), "test")
    assert not ds.has_labels
    assert (ds[0]["label"] == 255).all()


def test_bad_label_type(tmp_path):
    make_cityscapes(tmp_path)
    with pytest.raises(ValueError, match="LABEL_TYPE"):
        build_dataset(cfg_for(tmp_path, LABEL_TYPE="color"), "train")


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("label_type,bad", [("labelIds", 40), ("labelTrainIds", 200)])
def test_values_of_no_cityscapes_id_are_an_error_naming_file_and_values(tmp_path, label_type, bad):
    ids = np.full((4, 10), 7, dtype=np.uint8)
    ids[0, :3] = bad
    make_cityscapes(tmp_path, label_ids=ids)
    label = tmp_path / "gtFine" / "train" / "aachen" / f"aachen_000000_000019_gtFine_{label_type}.png"
    cv2.imwrite(str(label), ids)  # the stored file holds the foreign value whatever the label type
    before = _sha(label)
    with pytest.raises(ValueError, match=rf"(?s)outside the 19 classes.*{label.name}: \[{bad}\]"):
        build_dataset(cfg_for(tmp_path, LABEL_TYPE=label_type), "train")
    assert _sha(label) == before
    # Switched off, the value is ignored rather than trained on.
    ds = build_dataset(cfg_for(tmp_path, LABEL_TYPE=label_type, CHECK_LABELS=False), "train", train=False)
    assert (ds[0]["label"][0, :3] == 255).all()


def test_truncated_files_and_size_mismatches_are_found_when_indexing(tmp_path):
    make_cityscapes(tmp_path, names=("aachen_000000_000019", "aachen_000001_000019"))
    image = tmp_path / "leftImg8bit" / "train" / "aachen" / "aachen_000001_000019_leftImg8bit.png"
    data = image.read_bytes()
    image.write_bytes(data[:-20])  # a copy cut short
    with pytest.raises(ValueError, match=r"aachen_000001_000019_leftImg8bit\.png is truncated"):
        build_dataset(cfg_for(tmp_path), "train")
    image.write_bytes(data)
    label = tmp_path / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    cv2.imwrite(str(label), np.zeros((5, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"label .*aachen_000000_000019_gtFine_labelIds\.png is 10x5 but image .* is 10x4"):
        build_dataset(cfg_for(tmp_path), "train")


def test_missing_label_folder_of_a_labelled_split_is_named(tmp_path):
    make_cityscapes(tmp_path, split="val", with_labels=False)
    os.rmdir(os.path.join(tmp_path, "gtFine", "val", "aachen"))
    os.rmdir(os.path.join(tmp_path, "gtFine", "val"))
    with pytest.raises(FileNotFoundError, match=r"Cityscapes label folder not found: .*gtFine/val \(1 images"):
        build_dataset(cfg_for(tmp_path), "val")
    unchecked = build_dataset(cfg_for(tmp_path), "val", strict=False)
    assert unchecked.expects_labels and not unchecked.has_labels


def test_samples_are_sorted_by_city_then_name_and_pair_the_label_of_the_same_city(tmp_path):
    make_cityscapes(tmp_path, city="bremen", names=("bremen_000001_000019", "bremen_000000_000019"))
    make_cityscapes(tmp_path, city="aachen", names=("aachen_000000_000019",))
    make_cityscapes(tmp_path, city="aachen", names=("aachen_000001_000019",), with_labels=False)

    samples = find_samples(str(tmp_path), "train", "labelIds", strict=False)
    assert [s.name for s in samples] == ["aachen_000000_000019", "aachen_000001_000019", "bremen_000000_000019",
                                         "bremen_000001_000019"]
    assert samples[1].label is None  # not strict: the missing label is None, the image kept
    assert samples[2].label == str(tmp_path / "gtFine" / "train" / "bremen" / "bremen_000000_000019_gtFine_labelIds.png")
    assert find_samples(str(tmp_path), "train", None)[0].label is None  # no labels asked for


def test_instance_maps_are_found_beside_the_labels(tmp_path):
    make_cityscapes(tmp_path, split="val", city="lindau", names=("lindau_000000_000019",))
    cv2.imwrite(str(tmp_path / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_instanceIds.png"),
                np.full((4, 10), 26001, np.uint16))
    ds = build_dataset(cfg_for(tmp_path), "val", train=False)
    assert ds.instance_paths == [str(tmp_path / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_instanceIds.png")]
    assert int(ds[0]["instances"][0, 0]) == 26001
