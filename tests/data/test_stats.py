import math

import cv2
import numpy as np
import pytest

from segkit.config import get_cfg
from segkit.data import build_dataset
from segkit.data.stats import add_config_problems, median_frequency_weights, scan_dataset


def test_median_frequency_weights_from_known_counts():
    # freq = .1 .3 0 .6 -> median over present classes .3 -> weights 3, 1, 0, .5
    np.testing.assert_allclose(median_frequency_weights([100, 300, 0, 600]), [3.0, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(median_frequency_weights([5, 5]), [1.0, 1.0])
    with pytest.raises(ValueError, match="zero"):
        median_frequency_weights([0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        median_frequency_weights([1, -1])


@pytest.fixture
def known_set(tmp_path, monkeypatch):
    """2 images: 4x6 and 2x3; labels with known per-class counts, ignore, and one unknown value."""
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "train").mkdir()
    (tmp_path / "trainannot").mkdir()
    a = np.zeros((4, 6), np.uint8)
    a[0, :] = 1          # 6 px class 1
    a[1, :2] = 255       # 2 px ignored
    b = np.array([[2, 2, 9], [0, 1, 1]], np.uint8)  # 9 is unknown
    img_a = np.zeros((4, 6, 3), np.uint8)
    img_a[..., 2] = 255  # pure red (BGR)
    img_b = np.full((2, 3, 3), 51, np.uint8)
    for stem, img, lab in (("a", img_a, a), ("b", img_b, b)):
        cv2.imwrite(str(tmp_path / "train" / f"{stem}.png"), img)
        cv2.imwrite(str(tmp_path / "trainannot" / f"{stem}.png"), lab)
    cfg = get_cfg()
    cfg.DATASET.NAME = "folder"
    cfg.DATASET.ROOT = str(tmp_path)
    cfg.DATASET.CLASS_NAMES = ["c0", "c1", "c2"]
    return cfg


def test_scan_counts(known_set):
    ds = build_dataset(known_set, "train", train=False, check_labels=False, strict=False)
    r = scan_dataset(ds, workers=1)
    assert r["num_images"] == 2
    assert r["class_pixels"] == {"c0": 16 + 1, "c1": 6 + 2, "c2": 2}
    assert r["ignored_pixels"] == 2 and r["unknown_values"] == {"9": 1}
    assert r["label_values"] == [0, 1, 2, 9, 255]
    assert list(r["files_with_unknown_values"].values()) == [[9]]
    assert r["image_size"] == {"min": [2, 3], "max": [4, 6]}
    # 24 red pixels and 6 grey (0.2) pixels: per-channel mean and std over all 30.
    r_mean, g_mean = (24 + 6 * 0.2) / 30, 0.2 * 6 / 30
    np.testing.assert_allclose(r["mean"], [r_mean, g_mean, g_mean], atol=1e-6)
    np.testing.assert_allclose(r["std"][0], math.sqrt((24 + 6 * 0.04) / 30 - r_mean**2), atol=1e-6)
    np.testing.assert_allclose(r["median_freq_weights"], median_frequency_weights([17, 8, 2]))
    assert r["ok"] is False


def test_scan_reports_missing_labels(known_set, tmp_path):
    cv2.imwrite(str(tmp_path / "train" / "c.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(FileNotFoundError):
        build_dataset(known_set, "train")
    ds = build_dataset(known_set, "train", check_labels=False, strict=False)
    r = scan_dataset(ds, image_stats=False)
    assert r["images_without_labels"] == [str(tmp_path / "train" / "c.png")]
    assert "mean" not in r


def test_count_class_pixels(known_set):
    from segkit.data.stats import count_class_pixels

    ds = build_dataset(known_set, "train", train=False, check_labels=False)
    assert count_class_pixels(ds) == [17, 8, 2]


def test_config_problems_name_the_class_count_and_a_split_without_labels(known_set, tmp_path):
    label_b = tmp_path / "trainannot" / "b.png"
    cv2.imwrite(str(label_b), np.array([[2, 2, 1], [0, 1, 1]], np.uint8))  # no unknown value now
    known_set.MODEL.NUM_CLASSES = 3
    ds = build_dataset(known_set, "train", train=False, check_labels=False, strict=False)
    report = scan_dataset(ds, image_stats=False, workers=1)
    assert report["ok"] and add_config_problems(report, known_set, ds, "train") == [] and report["ok"]
    assert report["problems"] == []

    known_set.MODEL.NUM_CLASSES = 19
    report = scan_dataset(ds, image_stats=False, workers=1)
    problems = add_config_problems(report, known_set, ds, "train")
    assert problems == report["problems"] and len(problems) == 1 and report["ok"] is False
    assert problems[0].startswith("MODEL.NUM_CLASSES is 19 but dataset 'folder'") and "set MODEL.NUM_CLASSES 3" in problems[0]

    known_set.MODEL.NUM_CLASSES = 3
    for label in (tmp_path / "trainannot").iterdir():
        label.unlink()
    ds = build_dataset(known_set, "train", train=False, check_labels=False, strict=False)
    report = scan_dataset(ds, image_stats=False, workers=1)
    assert add_config_problems(report, known_set, ds, "train") == [
        "no image of split 'train' has a label: is its label folder missing? (only DATASET.TEST_SPLIT 'test' may "
        "be unlabelled)"]
    assert report["ok"] is False
