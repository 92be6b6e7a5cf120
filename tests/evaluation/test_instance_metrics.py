"""iIoU and category metrics against the official Cityscapes evaluator, on generated label/instance maps."""
from __future__ import annotations

import copy
import math
import os

import cv2
import numpy as np
import pytest
import torch

from segkit.config import get_cfg
from segkit.data import build_dataset
from segkit.data.categories import InstanceSpec, cityscapes_instance_spec
from segkit.data.cityscapes import CLASS_NAMES, train_id_to_label_id
from segkit.evaluation import evaluate_dataset, format_metrics_table
from segkit.evaluation.instance_metrics import InstanceStats, category_metrics
from segkit.evaluation.metrics import confusion_matrix
from tests.evaluation.test_prediction_files import STEP, RedDecoder

LABEL_OF_TRAIN = train_id_to_label_id()[:19]
# Stuff label ids (road, sidewalk, building, vegetation, sky), unlabeled, and instance classes
# person 24, rider 25, car 26, truck 27, bicycle 33, plus caravan 29 (instances, ignored in evaluation).
STUFF = [7, 8, 11, 21, 23, 0]
THINGS = [24, 25, 26, 27, 33, 29]


def _lut() -> np.ndarray:
    lut = np.full(256, 255, dtype=np.int64)
    for t, lid in enumerate(LABEL_OF_TRAIN):
        lut[lid] = t
    return lut


def make_pair(rng: np.random.Generator, size=(64, 96)):
    """labelIds, instanceIds and a predicted labelIds map: stuff blocks with rectangular instances of many sizes."""
    h, w = size
    gt = np.kron(rng.choice(STUFF, size=(h // 16, w // 16)), np.ones((16, 16), dtype=np.int64))
    inst = gt.copy()
    counters: dict[int, int] = {}
    for _ in range(rng.integers(4, 9)):
        lid = int(rng.choice(THINGS))
        y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        hh, ww = int(rng.integers(2, 30)), int(rng.integers(2, 40))
        gt[y:y + hh, x:x + ww] = lid
        k = counters.get(lid, 0)
        counters[lid] = k + 1
        inst[y:y + hh, x:x + ww] = lid * 1000 + k
    # The prediction: mostly right, with class swaps inside and across categories and missed pixels.
    train = _lut()[gt]
    pred_train = np.where(train == 255, rng.integers(0, 19, size=gt.shape), train)
    noise = rng.random(gt.shape)
    pred_train = np.where(noise < 0.15, rng.integers(0, 19, size=gt.shape), pred_train)
    swap = {11: 12, 12: 11, 13: 14, 14: 13, 18: 17}  # person<->rider, car<->truck, bicycle->motorcycle
    sel = noise > 0.9
    pred_train[sel] = np.vectorize(lambda t: swap.get(int(t), int(t)))(pred_train[sel])
    pred = np.asarray(LABEL_OF_TRAIN)[pred_train]
    return gt.astype(np.uint8), inst.astype(np.int32), pred.astype(np.uint8), pred_train


def _official(gt_files, pred_files):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    args = copy.copy(ev.args)
    args.evalInstLevelScore, args.evalPixelAccuracy, args.JSONOutput, args.quiet = True, False, False, True
    # cityscapesscripts 2.3.0 calls np.in1d, removed in NumPy 2.4: patched for the reference call only.
    had = hasattr(np, "in1d")
    old = getattr(np, "in1d", None)
    np.in1d = lambda a, b, **kw: np.isin(a, b, **kw).reshape(-1)
    try:
        return ev.evaluateImgLists(pred_files, gt_files, args)
    finally:
        if had:
            np.in1d = old
        else:
            del np.in1d


def test_iiou_and_categories_equal_the_official_evaluator(tmp_path):
    rng = np.random.default_rng(0)
    spec = cityscapes_instance_spec(CLASS_NAMES)
    conf = torch.zeros(19, 19, dtype=torch.int64)
    stats = InstanceStats(spec)
    gt_files, pred_files = [], []
    lut = _lut()
    for i in range(6):
        gt, inst, pred, pred_train = make_pair(rng)
        base = str(tmp_path / f"city_{i:06d}_000019")
        for suffix, arr in (("_gtFine_labelIds.png", gt), ("_gtFine_instanceIds.png", inst.astype(np.uint16)),
                            ("_pred.png", pred)):
            assert cv2.imwrite(base + suffix, arr)
        gt_files.append(base + "_gtFine_labelIds.png")
        pred_files.append(base + "_pred.png")
        conf += confusion_matrix(torch.from_numpy(pred_train), torch.from_numpy(lut[gt]), 19, 255)
        stats.update(torch.from_numpy(pred_train), torch.from_numpy(inst))
    official = _official(gt_files, pred_files)
    ours = category_metrics(conf, spec, stats)

    names = spec.categories
    for name in names:
        assert _same(ours["per_category"][name]["IoU"], official["categoryScores"][name]), name
    for name in spec.instance_categories:
        assert _same(ours["per_category"][name]["iIoU"], official["categoryInstScores"][name]), name
    for train_id, value in ours["per_class_iIoU"].items():
        assert _same(value, official["classInstScores"][CLASS_NAMES[train_id]]), CLASS_NAMES[train_id]
    assert ours["category_IoU"] == pytest.approx(official["averageScoreCategories"] * 100, abs=0.01)
    assert ours["iIoU"] == pytest.approx(official["averageScoreInstClasses"] * 100, abs=0.01)
    assert ours["category_iIoU"] == pytest.approx(official["averageScoreInstCategories"] * 100, abs=0.01)
    # The data exercises what matters: imperfect instance classes and both instance categories.
    assert set(spec.instance_categories) == {"human", "vehicle"}
    assert 10 < ours["iIoU"] < 95 and 10 < ours["category_iIoU"] < 99


def test_evaluate_dataset_reports_the_four_benchmark_numbers(tmp_path):
    """Cityscapes layout with instanceIds: evaluate_dataset's iIoU/category numbers equal the official ones."""
    rng = np.random.default_rng(1)
    root = tmp_path / "cityscapes"
    gt_files = []
    for i in range(4):
        gt, inst, _, pred_train = make_pair(rng)
        city = ["aachen", "bremen"][i % 2]
        name = f"{city}_{i:06d}_000019"
        # The red channel carries the prediction for RedDecoder: the model's output is known exactly.
        red = pred_train * STEP
        image = np.stack([rng.integers(0, 255, gt.shape), rng.integers(0, 255, gt.shape), red], -1).astype(np.uint8)
        for sub, fname, arr in (("leftImg8bit", f"{name}_leftImg8bit.png", image),
                                ("gtFine", f"{name}_gtFine_labelIds.png", gt),
                                ("gtFine", f"{name}_gtFine_instanceIds.png", inst.astype(np.uint16))):
            d = root / sub / "val" / city
            d.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(d / fname), arr)
        gt_files.append(str(root / "gtFine" / "val" / city / f"{name}_gtFine_labelIds.png"))
    cfg = get_cfg()
    cfg.DATASET.ROOT = str(root)
    cfg.DATALOADER.NUM_WORKERS = 0
    dataset = build_dataset(cfg, "val", train=False)
    assert dataset.instance_spec is not None
    pred_dir = tmp_path / "pred"
    ours = evaluate_dataset(RedDecoder(), dataset, cfg, "cpu", save_pred_dir=str(pred_dir))
    preds = [str(pred_dir / "labelIds" / os.path.basename(g).replace("_gtFine_labelIds.png", "_leftImg8bit.png"))
             for g in gt_files]
    official = _official(gt_files, preds)
    assert ours["iIoU"] == pytest.approx(official["averageScoreInstClasses"] * 100, abs=0.01)
    assert ours["category_IoU"] == pytest.approx(official["averageScoreCategories"] * 100, abs=0.01)
    assert ours["category_iIoU"] == pytest.approx(official["averageScoreInstCategories"] * 100, abs=0.01)
    assert ours["mIoU"] == pytest.approx(official["averageScoreClasses"] * 100, abs=0.01)
    assert ours["per_class"]["person"]["iIoU"] == pytest.approx(official["classInstScores"]["person"] * 100, abs=0.01)
    assert "road" in ours["per_class"] and "iIoU" not in ours["per_class"]["road"]
    table = format_metrics_table(ours)
    assert "category_iIoU" in table and "vehicle" in table
    # Training datasets never read instance maps: a crop would misalign them.
    assert build_dataset(cfg, "val", train=True).instance_spec is None


def _same(mine: float, theirs: float) -> bool:
    if math.isnan(theirs):
        return math.isnan(mine)
    return abs(mine - theirs * 100) <= 0.01


def test_weights_make_every_instance_count_alike():
    # Two "person" instances of 4 and 16 pixels with average size 10: the small one entirely missed,
    # the large one entirely right. Weighted TP = 16 * 10/16 = 10, FN = 4 * 10/4 = 10: iIoU 50% without FP.
    spec = InstanceSpec(class_categories=("flat", "human"), instance_classes={24: 1}, avg_sizes={1: 10.0},
                        instance_categories=("human",))
    inst = torch.zeros(8, 8, dtype=torch.int64)
    inst[0:2, 0:2] = 24000 + 1
    inst[4:8, 4:8] = 24000 + 2
    pred = torch.zeros(8, 8, dtype=torch.int64)
    pred[4:8, 4:8] = 1
    stats = InstanceStats(spec)
    stats.update(pred, inst)
    conf = confusion_matrix(pred, (inst > 1000).long(), 2, 255)
    out = category_metrics(conf, spec, stats)
    assert out["per_class_iIoU"][1] == pytest.approx(50.0)
    assert out["per_category"]["human"]["iIoU"] == pytest.approx(50.0)
    assert stats.class_sums[:, 1].tolist() == pytest.approx([10.0, 10.0])


def test_values_at_or_below_1000_and_other_classes_are_not_instances():
    spec = InstanceSpec(class_categories=("flat", "human"), instance_classes={24: 1}, avg_sizes={1: 10.0},
                        instance_categories=("human",))
    stats = InstanceStats(spec)
    inst = torch.tensor([[1000, 24, 7000, 26001]])  # 1000 exactly, a bare label id, an unknown class
    stats.update(torch.zeros_like(inst), inst)
    assert stats.class_sums.abs().sum() == 0 and stats.category_sums.abs().sum() == 0
    with pytest.raises(ValueError, match="differ"):
        stats.update(torch.zeros(2, 2, dtype=torch.int64), inst)


def test_cityscapes_spec_rejects_other_class_lists():
    with pytest.raises(ValueError, match="not Cityscapes"):
        cityscapes_instance_spec(["a", "b"])
