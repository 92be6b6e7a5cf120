import cv2
import numpy as np
import pytest

from segkit.data.base import Sample, SegDataset, build_label_lut, display_palette, read_image


def _dataset(tmp_path, label: np.ndarray | None, **kw) -> SegDataset:
    image = str(tmp_path / "i.png")
    cv2.imwrite(image, np.zeros((2, 3, 3), np.uint8))
    path = None
    if label is not None:
        path = str(tmp_path / "l.png")
        cv2.imwrite(path, label)
    return SegDataset([Sample(image, path, "i")], ["a", "b"], [], 255, build_label_lut(2, 255), **kw)


def test_contract_attributes(tmp_path):
    ds = _dataset(tmp_path, np.array([[0, 1, 1], [255, 0, 1]], np.uint8))
    assert ds.class_names == ["a", "b"] and ds.num_classes == 2 and ds.ignore_index == 255
    assert ds.has_labels and ds.train_id_to_label_id is None and len(ds.palette) == 2
    item = ds[0]
    assert item["image"].shape == (3, 2, 3) and item["label"].tolist() == [[0, 1, 1], [255, 0, 1]]
    table = np.arange(256, dtype=np.uint8)
    assert _dataset(tmp_path, None, train_id_to_label_id=table).train_id_to_label_id is not None
    unlabelled = _dataset(tmp_path, None)
    assert not unlabelled.has_labels and (unlabelled[0]["label"] == 255).all()


def test_bad_declarations_are_named(tmp_path):
    with pytest.raises(ValueError, match="256 entries"):
        _dataset(tmp_path, None, train_id_to_label_id=np.zeros(19, np.uint8))
    with pytest.raises(ValueError, match="IGNORE_INDEX"):
        SegDataset([], ["a"], [], 300, build_label_lut(1, 255))
    with pytest.raises(ValueError, match="SegDataset declares no classes"):
        SegDataset.declared_classes(None)


def test_values_outside_the_classes_become_ignore(tmp_path):
    ds = _dataset(tmp_path, np.array([[0, 7, 1], [1, 1, 1]], np.uint8))
    assert ds[0]["label"].tolist() == [[0, 255, 1], [1, 1, 1]]
    assert ds.is_valid_value(np.array([0, 1, 7, 255])).tolist() == [True, True, False, True]


def test_label_of_another_size_is_named(tmp_path):
    ds = _dataset(tmp_path, np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"l\.png is 3x3 but image .* is 3x2"):
        ds[0]


def test_helpers(tmp_path):
    assert display_palette([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 2) == [(1, 2, 3), (4, 5, 6)]
    spread = display_palette([], 4)
    assert len(set(spread)) == 4 and all(len(c) == 3 for c in spread)
    lut = build_label_lut(3, 255, [[10, 2], [11, 255]])
    assert lut[10] == 2 and lut[11] == 255 and lut[5] == 5
    with pytest.raises(ValueError, match="maps 4 to 9"):
        build_label_lut(3, 255, [[4, 9]])
    with pytest.raises(OSError, match="nothing.png"):
        read_image(str(tmp_path / "nothing.png"))
