"""The Cityscapes benchmark's other three numbers: iIoU per instance class, IoU and iIoU per category.

Definitions follow the official pixel-level evaluator (cityscapesscripts'
evalPixelLevelSemanticLabeling), computed on train ids instead of label ids:
- category IoU: the classes of a category pooled into one class: TP = sum of C[cat, cat],
  FN = the category's ground-truth rows minus TP, FP = predictions of the category on pixels of
  evaluated classes of other categories (C rows ground truth, ignored pixels not counted);
- iIoU of class c: TP and FN summed over ground-truth instances, each pixel weighted by
  avg_size[c] / instance size, so that large instances do not dominate; FP as in the class IoU
  (unweighted, the column of c without its diagonal);
- iIoU of a category: as the class iIoU, with a pixel counted correct when its prediction is any
  class of the instance's category; weights are the instance's class weights; defined only for
  categories whose every class has instances (Cityscapes: human, vehicle);
- an instance is a ground-truth instance-map value > 1000 whose class part (value // 1000, a stored
  label value) maps to an evaluated class with instances; everything else is not an instance.
Means average the non-NaN entries. All figures in percent.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.categories import InstanceSpec
from ..utils.comm import all_reduce_sum
from .loop import SampleInfo
from .metrics import SegMetrics, nan_div, nanmean


class InstanceStats:
    """Accumulates instance-weighted TP / FN per class and per category over images (float64 sums)."""

    def __init__(self, spec: InstanceSpec, device: torch.device | str = "cpu") -> None:
        self.spec = spec
        num_classes = len(spec.class_categories)
        lut_size = max(spec.instance_classes, default=0) + 1
        # label value of an instance -> train id (-1: not an instance class) and its average size
        self._train_of = torch.full((lut_size,), -1, dtype=torch.int64, device=device)
        self._avg_of = torch.zeros(lut_size, dtype=torch.float64, device=device)
        for value, train_id in spec.instance_classes.items():
            self._train_of[value] = train_id
            self._avg_of[value] = float(spec.avg_sizes[train_id])
        self._cat_of = torch.as_tensor(spec.category_index(), device=device)
        # [class tp, class fn] and [category tp, category fn], weighted
        self.class_sums = torch.zeros(2, num_classes, dtype=torch.float64, device=device)
        self.category_sums = torch.zeros(2, len(spec.categories), dtype=torch.float64, device=device)

    def update(self, pred: torch.Tensor, instance_ids: torch.Tensor) -> None:
        """Add one image: `pred` train ids [H, W], `instance_ids` the ground-truth instance map [H, W]."""
        if pred.shape != instance_ids.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and instance map {tuple(instance_ids.shape)} differ")
        device = self.class_sums.device
        inst = instance_ids.to(device).reshape(-1).long()
        pred = pred.to(device).reshape(-1).long()
        value = inst // 1000
        keep = (inst > 1000) & (value < self._train_of.numel())
        keep[keep.clone()] = self._train_of[value[keep]] >= 0
        if not bool(keep.any()):
            return
        inst, value, pred = inst[keep], value[keep], pred[keep]
        train = self._train_of[value]
        ids, pixel_instance, sizes = torch.unique(inst, return_inverse=True, return_counts=True)
        correct = (pred == train).double()
        same_category = (self._cat_of[pred] == self._cat_of[train]).double()
        # Per instance: correct pixels, category-correct pixels, and its class and weight.
        n = ids.numel()
        tp = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, pixel_instance, correct)
        cat_tp = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, pixel_instance, same_category)
        inst_value = ids // 1000
        inst_train = self._train_of[inst_value]
        weight = self._avg_of[inst_value] / sizes.double()
        size = sizes.double()
        self.class_sums[0].index_add_(0, inst_train, tp * weight)
        self.class_sums[1].index_add_(0, inst_train, (size - tp) * weight)
        inst_cat = self._cat_of[inst_train]
        self.category_sums[0].index_add_(0, inst_cat, cat_tp * weight)
        self.category_sums[1].index_add_(0, inst_cat, (size - cat_tp) * weight)

    def tensors(self) -> list[torch.Tensor]:
        """The accumulators, for summing over processes in place."""
        return [self.class_sums, self.category_sums]


def category_metrics(
    conf: torch.Tensor | np.ndarray, spec: InstanceSpec, stats: InstanceStats | None = None
) -> dict[str, Any]:
    """Category IoU (and, given instance stats, class and category iIoU) in percent from the confusion matrix."""
    cm = conf.detach().cpu().numpy() if isinstance(conf, torch.Tensor) else np.asarray(conf)
    cm = cm.astype(np.float64)
    names = spec.categories
    member = np.eye(len(names))[spec.category_index()]  # [classes, categories] one-hot
    cat_cm = member.T @ cm @ member  # the confusion matrix of categories
    tp = np.diag(cat_cm)
    category_iou = nan_div(tp, cat_cm.sum(axis=1) + cat_cm.sum(axis=0) - tp) * 100.0
    out: dict[str, Any] = {
        "category_IoU": nanmean(category_iou),
        "per_category": {n: {"IoU": float(v)} for n, v in zip(names, category_iou)},
    }
    if stats is None:
        return out
    class_tp, class_fn = stats.class_sums.cpu().numpy()
    class_fp = cm.sum(axis=0) - np.diag(cm)
    class_iiou = nan_div(class_tp, class_tp + class_fn + class_fp) * 100.0
    instance_classes = sorted(set(spec.instance_classes.values()))
    out["iIoU"] = nanmean(class_iiou[instance_classes])
    out["per_class_iIoU"] = {int(c): float(class_iiou[c]) for c in instance_classes}
    cat_tp, cat_fn = stats.category_sums.cpu().numpy()
    cat_fp = cat_cm.sum(axis=0) - tp
    cat_iiou = nan_div(cat_tp, cat_tp + cat_fn + cat_fp) * 100.0
    defined = [names.index(c) for c in spec.instance_categories]
    out["category_iIoU"] = nanmean(cat_iiou[defined])
    for i in defined:
        out["per_category"][names[i]]["iIoU"] = float(cat_iiou[i])
    return out


class InstanceSegMetrics(SegMetrics):
    """Loop consumer for datasets that declare an InstanceSpec: SegMetrics plus category IoU, and iIoU per
    class and category from the ground-truth instance maps the dataset yields as "instances"."""

    def __init__(self, class_names, ignore_index: int, device: torch.device | str, spec: InstanceSpec) -> None:
        super().__init__(class_names, ignore_index, device)
        self.spec = spec
        self.stats = InstanceStats(spec, device) if spec.instance_classes else None

    def process(self, pred: torch.Tensor, label: torch.Tensor, info: SampleInfo) -> None:
        super().process(pred, label, info)
        if self.stats is not None:
            instances = info.extras.get("instances")
            if instances is None:
                raise ValueError(f"{info.path}: the dataset declares instance classes but gave no instance map")
            self.stats.update(pred, instances)

    def finish(self) -> dict[str, Any]:
        result = super().finish()  # sums the confusion matrix over ranks
        if self.stats is not None:
            for t in self.stats.tensors():
                all_reduce_sum(t)
        extra = category_metrics(self.conf, self.spec, self.stats)
        for train_id, value in extra.pop("per_class_iIoU", {}).items():
            result["per_class"][self.class_names[train_id]]["iIoU"] = value
        result.update(extra)
        return result
