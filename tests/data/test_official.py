"""What every dataset read in its official layout shares, on the tiny generated copy of each layout:
discovery helpers, tables, check_dataset's class histogram, the named error for a value outside the table,
and the evaluator on counts known from the label files."""
import os

import numpy as np
import pytest
import torch

from segkit.data import DATASETS, build_dataset
from segkit.data.labels import LabelReader
from segkit.data.official import UNKNOWN, OfficialDataset, bitwise_palette, find_pairs, list_pairs, value_table
from segkit.evaluation import evaluate_dataset
from tests.data.tiny import overwrite_label, write_image, write_label, write_tiny_dataset
from tools.check_dataset import main as check_main

OFFICIAL = sorted(n for n, cls in DATASETS.items() if issubclass(cls, OfficialDataset))


def test_all_issue_datasets_are_registered():
    assert set(OFFICIAL) == {"cocostuff164k", "cocostuff10k", "ade20k", "voc_aug", "bdd100k", "mapillary_v12",
                             "mapillary_v20", "kitti", "acdc", "dark_zurich"}


def test_value_table_and_palette():
    table = value_table({3: 0, 7: 1}, [0], ignore_index=250)
    assert table.shape == (65536,) and table[3] == 0 and table[7] == 1 and table[0] == 250
    assert (np.delete(table, [0, 3, 7]) == UNKNOWN).all()
    palette = bitwise_palette(256)
    assert palette[:3] == [(0, 0, 0), (128, 0, 0), (0, 128, 0)] and len(set(palette)) == 256


def test_find_pairs_recurses_and_names_missing_labels(tmp_path):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "img" / "a" / "x_rgb.png", (4, 4), rng)
    write_image(tmp_path / "img" / "b" / "y_rgb.png", (4, 4), rng)
    write_label(tmp_path / "gt" / "a" / "x_gt.png", np.zeros((4, 4)))
    with pytest.raises(FileNotFoundError, match=r"label of .*y_rgb.png not found: .*gt/b/y_gt.png"):
        find_pairs(str(tmp_path / "img"), "_rgb.png", str(tmp_path / "gt"), "_gt.png")
    samples = find_pairs(str(tmp_path / "img"), "_rgb.png", str(tmp_path / "gt"), "_gt.png", strict=False)
    assert [(s.name, s.label is None) for s in samples] == [("x", False), ("y", True)]
    with pytest.raises(FileNotFoundError, match="no \\*_none.png images"):
        find_pairs(str(tmp_path / "img"), "_none.png", None, "")


def test_list_pairs_names_the_line(tmp_path):
    (tmp_path / "list.txt").write_text("a\n/JPEGImages/b.jpg /SegmentationClassAug/b.png\n")
    rng = np.random.default_rng(0)
    write_image(tmp_path / "a.jpg", (4, 4), rng)
    with pytest.raises(FileNotFoundError, match=r"list.txt:2: image not found: .*b.jpg"):
        list_pairs(str(tmp_path / "list.txt"), str(tmp_path / "{id}.jpg"), None)
    write_image(tmp_path / "b.jpg", (4, 4), rng)
    assert [s.name for s in list_pairs(str(tmp_path / "list.txt"), str(tmp_path / "{id}.jpg"), None)] == ["a", "b"]


@pytest.fixture(params=OFFICIAL)
def official(request, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    return write_tiny_dataset(request.param, tmp_path / request.param)


def _expected_counts(ds) -> np.ndarray:
    """Pixels per train id counted from the label files through the official table, independently of the loader."""
    counts = np.zeros(ds.num_classes, dtype=np.int64)
    for s in ds.samples:
        raw = LabelReader(pil_palette=True)(s.label).astype(np.int64)
        ids = ds.value_lut[raw]
        counts += np.bincount(ids[(ids >= 0) & (ids < ds.num_classes)], minlength=ds.num_classes)
    return counts


def test_check_dataset_histogram(official, tmp_path, capsys):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(official.dump())
    ds = build_dataset(official, official.DATASET.VAL_SPLIT, train=False)
    assert check_main(["--config-file", str(cfg_file), "--split", official.DATASET.VAL_SPLIT, "--json",
                       str(tmp_path / "r.json"), "MODEL.NUM_CLASSES", str(ds.num_classes)]) == 0
    out = capsys.readouterr().out
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["class_pixels"].values()) == _expected_counts(ds).tolist()
    present = [n for n, c in report["class_pixels"].items() if c]
    assert present and all(n in out for n in present) and "OK: labels agree" in out
    assert report["ignored_pixels"] > 0  # every generated layout holds its ignored values too


def test_value_outside_the_table_is_a_named_error(official, tmp_path, capsys):
    ds = build_dataset(official, official.DATASET.VAL_SPLIT, train=False)
    bad = int(np.flatnonzero(ds.value_lut[:256] == UNKNOWN)[0])
    path = ds.samples[0].label
    raw = LabelReader(pil_palette=True)(path).copy()
    raw[0, 0] = bad
    overwrite_label(path, raw)
    with pytest.raises(ValueError, match=rf"{os.path.basename(path)}: \[{bad}\]"):
        build_dataset(official, official.DATASET.VAL_SPLIT, train=False)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(official.dump())
    assert check_main(["--config-file", str(cfg_file), "--split", official.DATASET.VAL_SPLIT, "--no-image-stats",
                       "MODEL.NUM_CLASSES", str(ds.num_classes)]) == 1
    out = capsys.readouterr().out
    assert f"UNKNOWN label values" in out and f"{bad}: 1" in out and path in out


class ConstantNet(torch.nn.Module):
    """Predicts class `k` everywhere."""

    def __init__(self, num_classes: int, k: int) -> None:
        super().__init__()
        self.num_classes, self.k = num_classes, k

    def forward(self, x):
        logits = torch.zeros(x.shape[0], self.num_classes, *x.shape[2:])
        logits[:, self.k] = 1.0
        return logits


def test_evaluator_on_known_counts(official):
    ds = build_dataset(official, official.DATASET.VAL_SPLIT, train=False)
    counts = _expected_counts(ds)
    k = int(np.argmax(counts))
    result = evaluate_dataset(ConstantNet(ds.num_classes, k), ds, official, "cpu")
    # Predicting k everywhere: IoU_k = pixels of k / all counted pixels; every other present class 0.
    assert result["per_class"][ds.class_names[k]]["IoU"] == pytest.approx(100.0 * counts[k] / counts.sum())
    assert result["aAcc"] == pytest.approx(100.0 * counts[k] / counts.sum())
    assert all(result["per_class"][ds.class_names[c]]["IoU"] == 0.0 for c in np.flatnonzero(counts) if c != k)
    assert sum(map(sum, result["confusion_matrix"])) == counts.sum()
