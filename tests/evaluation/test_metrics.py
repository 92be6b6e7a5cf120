import json
import math
import os

import numpy as np
import pytest
import torch

from segkit.evaluation.loop import SampleInfo
from segkit.evaluation.metrics import (
    SegMetrics,
    compute_metrics,
    confusion_matrix,
    format_metrics_table,
    metrics_to_json,
    save_metrics,
)

NAMES = ["road", "car", "sky", "bus"]


def test_hand_made_matrix_with_absent_classes():
    # rows: ground truth, columns: prediction.
    cm = np.array(
        [
            [8, 2, 0, 0],  # road: 10 GT pixels, 8 right, 2 called car
            [1, 3, 0, 0],  # car: 4 GT pixels
            [0, 0, 0, 0],  # sky: neither GT nor prediction -> NaN, left out of the means
            [0, 0, 0, 0],  # bus: no GT ...
        ]
    )
    cm_pred_bus = cm.copy()
    cm_pred_bus[1, 3] = 2  # ... but predicted twice on car pixels -> IoU 0, Acc NaN
    m = compute_metrics(cm_pred_bus, NAMES)
    pc = m["per_class"]
    assert pc["road"]["IoU"] == pytest.approx(100 * 8 / (8 + 1 + 2))
    assert pc["road"]["Acc"] == pytest.approx(80.0)
    assert pc["car"]["IoU"] == pytest.approx(100 * 3 / (3 + 2 + 3))
    assert pc["car"]["Acc"] == pytest.approx(100 * 3 / 6)
    assert math.isnan(pc["sky"]["IoU"]) and math.isnan(pc["sky"]["Acc"])
    assert pc["bus"]["IoU"] == 0.0 and math.isnan(pc["bus"]["Acc"])
    assert m["mIoU"] == pytest.approx((pc["road"]["IoU"] + pc["car"]["IoU"] + 0.0) / 3)
    assert m["mAcc"] == pytest.approx((80.0 + 50.0) / 2)
    assert m["aAcc"] == pytest.approx(100 * 11 / 16)


def test_perfect_and_empty_matrices():
    m = compute_metrics(np.diag([5, 0, 7, 1]), NAMES)
    assert m["mIoU"] == pytest.approx(100.0) and m["mAcc"] == pytest.approx(100.0)
    assert math.isnan(m["per_class"]["car"]["IoU"])
    empty = compute_metrics(np.zeros((4, 4), dtype=np.int64), NAMES)
    assert all(math.isnan(empty[k]) for k in ("mIoU", "mAcc", "aAcc"))


def test_confusion_matrix_counts_and_ignore():
    pred = torch.tensor([[0, 1, 2], [2, 2, 0]])
    label = torch.tensor([[0, 1, 255], [2, 1, 255]])
    cm = confusion_matrix(pred, label, num_classes=3, ignore_index=255)
    assert cm.dtype == torch.int64
    expected = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    assert torch.equal(cm, expected)
    ref = np.zeros((3, 3), dtype=np.int64)
    rng = np.random.default_rng(0)
    p = rng.integers(0, 3, size=(20, 30))
    g = rng.integers(0, 4, size=(20, 30))
    g[g == 3] = 255
    for gi, pi in zip(g.ravel(), p.ravel()):
        if gi != 255:
            ref[gi, pi] += 1
    assert np.array_equal(confusion_matrix(torch.from_numpy(p), torch.from_numpy(g), 3).numpy(), ref)


def test_confusion_matrix_rejects_bad_labels():
    pred = torch.zeros(2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(pred, torch.tensor([[0, 7], [1, 255]]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(pred, torch.zeros(3, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="class names"):
        compute_metrics(np.eye(3), NAMES)


def test_table_and_json(tmp_path):
    cm = np.array([[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    m = compute_metrics(cm, NAMES)
    m["mode"] = {"scales": [1.0], "flip": False}
    table = format_metrics_table(m)
    for token in ("class", "IoU", "Acc", "road", "bus", "mIoU", "mAcc", "aAcc", "nan", f"{m['mIoU']:.2f}"):
        assert token in table
    data = json.loads(metrics_to_json(m))
    assert data["per_class"]["sky"]["IoU"] is None  # NaN as null: strict JSON
    assert data["mIoU"] == pytest.approx(m["mIoU"])
    assert data["mode"]["scales"] == [1.0]
    save_metrics(m, str(tmp_path / "sub" / "metrics.json"))
    assert json.load(open(tmp_path / "sub" / "metrics.json"))["aAcc"] == pytest.approx(100 * 5 / 6)
    assert os.listdir(tmp_path / "sub") == ["metrics.json"]  # atomic: no temporary left beside it


def test_metrics_consumer_sums_the_images():
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randint(0, 4, (5, 6), generator=g), torch.randint(0, 4, (5, 6), generator=g)) for _ in range(3)]
    pairs[0][1][0] = 255  # an ignored row
    consumer = SegMetrics(NAMES, 255, "cpu")
    for pred, label in pairs:
        consumer.process(pred, label, SampleInfo("x", ""))
    cm = sum(confusion_matrix(p, lab, 4) for p, lab in pairs)
    assert torch.equal(consumer.conf, cm)
    assert consumer.finish() == {**compute_metrics(cm, NAMES), "confusion_matrix": cm.tolist()}  # all-reduce: no-op


def test_round_figures_keep_two_decimals_in_every_table():
    m = {"per_class": {"road": {"IoU": 55.0, "Acc": 64.0}, "sky": {"IoU": float("nan"), "Acc": 100.0}},
         "mIoU": 55.0, "mAcc": 64.0, "aAcc": 70.0}
    table = format_metrics_table(m)
    assert "| road    | 55.00 |  64.00 |" in table and "| sky     |   nan | 100.00 |" in table
    assert table.splitlines()[-1] == "|  55.00 |  64.00 |  70.00 |"
