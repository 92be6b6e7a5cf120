"""Confusion-matrix metrics of semantic segmentation: IoU, accuracy, their means, and a printable table.

Conventions (the same as the official Cityscapes pixel-level evaluator, whose class-level IoU
segkit reproduces exactly, see tests/evaluation/test_prediction_files.py):
- rows of the confusion matrix are ground truth, columns predictions; pixels whose label is the
  ignore index are not counted at all, so predictions on them are neither TP nor FP;
- IoU_c = TP / (TP + FP + FN), no smoothing term; NaN when TP + FP + FN == 0, i.e. the class has
  neither ground truth nor prediction in the evaluated set. A class predicted somewhere but absent
  from the ground truth gets IoU 0 (the official evaluator does the same: TP = 0, FP > 0);
- Acc_c = TP / (TP + FN), NaN when the class has no ground-truth pixel (a prediction alone does
  not define a recall);
- mIoU and mAcc average only the non-NaN classes (the official "Score Average" does this too);
  aAcc = trace / total. All figures in percent.
- In JSON, NaN is written as null (strict JSON has no NaN).
"""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from tabulate import tabulate

from ..utils.comm import all_reduce_sum
from ..utils.io import atomic_write_text

if TYPE_CHECKING:
    from ..data import SegDataset
    from .loop import SampleInfo


def confusion_matrix(
    pred: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """int64 [C, C] confusion matrix (rows ground truth) of one prediction, on the prediction's device.

    `pred` and `label` are integer tensors of the same shape; label pixels equal to `ignore_index`
    are skipped. A label value outside [0, C) that is not the ignore index is an error, since
    silently dropping it would hide a wrong label mapping.
    """
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from label shape {tuple(label.shape)}")
    label = label.to(pred.device)
    valid = label != ignore_index
    gt = label[valid].long()
    pr = pred[valid].long()
    if gt.numel():
        # One host sync for all four bounds; the check guards against a wrong label mapping.
        glo, ghi, plo, phi = torch.stack([*torch.aminmax(gt), *torch.aminmax(pr)]).tolist()
        if glo < 0 or ghi >= num_classes:
            raise ValueError(
                f"label values must lie in [0, {num_classes}) or equal ignore_index {ignore_index}; "
                f"found values from {glo} to {ghi}"
            )
        if plo < 0 or phi >= num_classes:
            raise ValueError(f"predicted classes must lie in [0, {num_classes}); found {plo} to {phi}")
    counts = torch.bincount(gt * num_classes + pr, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def nan_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def nanmean(values: np.ndarray) -> float:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def compute_metrics(conf: torch.Tensor | np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """mIoU, mAcc, aAcc and per-class IoU/Acc in percent from a [C, C] confusion matrix (rows ground truth)."""
    cm = conf.detach().cpu().numpy() if isinstance(conf, torch.Tensor) else np.asarray(conf)
    cm = cm.astype(np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    if len(class_names) != cm.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {cm.shape[0]}-class confusion matrix")
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    iou = nan_div(tp, gt + pred - tp) * 100.0
    acc = nan_div(tp, gt) * 100.0
    total = cm.sum()
    return {
        "mIoU": nanmean(iou),
        "mAcc": nanmean(acc),
        "aAcc": float(tp.sum() / total * 100.0) if total > 0 else float("nan"),
        "per_class": {name: {"IoU": float(i), "Acc": float(a)} for name, i, a in zip(class_names, iou, acc)},
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def format_metrics_table(metrics: dict[str, Any], digits: int = 2) -> str:
    """Per-class table (IoU, Acc, and iIoU where computed), the category table where computed, then the means.

    Every figure keeps `digits` decimals (55.00, not tabulate's re-parsed 55).
    """
    def table(rows: list[list[str]], headers: list[str]) -> str:
        return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True,
                        colalign=("left",) + ("right",) * (len(headers) - 1))

    with_iiou = any("iIoU" in m for m in metrics["per_class"].values())
    headers = ["class", "IoU", "Acc"] + (["iIoU"] if with_iiou else [])
    rows = [[name, _fmt(m["IoU"], digits), _fmt(m["Acc"], digits)]
            + ([_fmt(m["iIoU"], digits) if "iIoU" in m else ""] if with_iiou else [])
            for name, m in metrics["per_class"].items()]
    tables = [table(rows, headers)]
    if "per_category" in metrics:
        cat_rows = [[name, _fmt(m["IoU"], digits), _fmt(m["iIoU"], digits) if "iIoU" in m else ""]
                    for name, m in metrics["per_category"].items()]
        tables.append(table(cat_rows, ["category", "IoU", "iIoU"]))
    means = [k for k in ("mIoU", "mAcc", "aAcc", "iIoU", "category_IoU", "category_iIoU") if k in metrics]
    means_table = tabulate([[_fmt(metrics[k], digits) for k in means]], headers=means, tablefmt="github",
                           disable_numparse=True, colalign=("right",) * len(means))
    tables.append(means_table)
    if "per_group" in metrics:
        tables.append(format_group_table(metrics, digits))
    return "\n\n".join(tables)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def metrics_to_json(metrics: dict[str, Any]) -> str:
    """Strict JSON of a metrics dict, NaN written as null."""
    return json.dumps(_nan_to_none(metrics), indent=2, allow_nan=False)


def save_metrics(metrics: dict[str, Any], path: str) -> None:
    """Write `metrics_to_json(metrics)` to `path` atomically, creating its folder."""
    atomic_write_text(path, metrics_to_json(metrics) + "\n")


class SegMetrics:
    """Loop consumer: one confusion matrix over this rank's images, summed over ranks, then `compute_metrics`.

    Summing integer counts makes a distributed run's figures equal a single process's exactly.
    """

    def __init__(self, class_names: Sequence[str], ignore_index: int, device: torch.device | str) -> None:
        self.class_names = list(class_names)
        self.ignore_index = int(ignore_index)
        n = len(self.class_names)
        # Allocated up front, not on the first image: a rank with no image must still join the all-reduce.
        self.conf = torch.zeros((n, n), dtype=torch.int64, device=device)

    @classmethod
    def from_dataset(cls, dataset: SegDataset, device: torch.device | str) -> SegMetrics:
        return cls(dataset.class_names, dataset.ignore_index, device)

    def process(self, pred: torch.Tensor, label: torch.Tensor, info: SampleInfo) -> None:
        self.conf += confusion_matrix(pred, label, len(self.class_names), self.ignore_index).to(self.conf.device)

    def finish(self) -> dict[str, Any]:
        all_reduce_sum(self.conf)
        # The matrix itself goes into the report too (rows ground truth), as the official evaluator's JSON does.
        return {**compute_metrics(self.conf, self.class_names), "confusion_matrix": self.conf.cpu().tolist()}


class GroupSegMetrics:
    """Loop consumer: one SegMetrics per group of images (ACDC's conditions: the dataset's `groups`, one per
    sample), so a split is reported per group besides overall in the same pass over the data."""

    def __init__(self, class_names: Sequence[str], ignore_index: int, device: torch.device | str,
                 groups_by_path: dict[str, str], group_key: str = "group") -> None:
        self.group_of = dict(groups_by_path)
        self.group_key = group_key
        # Every group allocated on every rank, in one order: the all-reduces of `finish` pair up.
        self.metrics = {g: SegMetrics(class_names, ignore_index, device) for g in sorted(set(self.group_of.values()))}
        self.counts = torch.zeros(len(self.metrics), dtype=torch.int64, device=device)
        self.index = {g: i for i, g in enumerate(self.metrics)}

    @classmethod
    def from_dataset(cls, dataset: SegDataset, device: torch.device | str) -> GroupSegMetrics:
        groups = {s.image: g for s, g in zip(dataset.samples, dataset.groups or [])}
        return cls(dataset.class_names, dataset.ignore_index, device, groups, dataset.group_key or "group")

    def process(self, pred: torch.Tensor, label: torch.Tensor, info: SampleInfo) -> None:
        group = self.group_of[info.path]
        self.metrics[group].process(pred, label, info)
        self.counts[self.index[group]] += 1

    def finish(self) -> dict[str, Any]:
        all_reduce_sum(self.counts)
        per_group = {}
        for (group, metrics), count in zip(self.metrics.items(), self.counts.tolist()):
            result = metrics.finish()
            result.pop("confusion_matrix")
            per_group[group] = {**result, "num_images": int(count)}
        return {"group_key": self.group_key, "per_group": per_group}


def format_group_table(metrics: dict[str, Any], digits: int = 2) -> str:
    """mIoU, mAcc and aAcc of each group (GroupSegMetrics) and of the whole split, one row each."""
    rows = [[group, m["num_images"], _fmt(m["mIoU"], digits), _fmt(m["mAcc"], digits), _fmt(m["aAcc"], digits)]
            for group, m in metrics["per_group"].items()]
    rows.append(["all", metrics.get("num_images", sum(r[1] for r in rows)), _fmt(metrics["mIoU"], digits),
                 _fmt(metrics["mAcc"], digits), _fmt(metrics["aAcc"], digits)])
    return tabulate(rows, headers=[metrics.get("group_key", "group"), "images", "mIoU", "mAcc", "aAcc"],
                    tablefmt="github")
