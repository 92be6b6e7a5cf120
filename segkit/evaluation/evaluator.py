"""Evaluation and prediction export over a dataset: the loop with the consumers each job needs."""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import torch
from yacs.config import CfgNode

from ..data import SegDataset
from .prediction_files import PredictionWriter
from .inference import Model
from .instance_metrics import InstanceSegMetrics
from .inference import InferenceMode
from .loop import Consumer, inference_on_dataset
from .metrics import GroupSegMetrics, SegMetrics

logger = logging.getLogger("segkit")


def evaluate_dataset(
    model: Model,
    dataset: SegDataset,
    cfg: CfgNode,
    device: torch.device | str,
    *,
    slide: bool | None = None,
    msc: bool | None = None,
    flip: bool | None = None,
    scales: Sequence[float] | None = None,
    save_pred_dir: str | None = None,
    mode: InferenceMode | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Metrics of `model` on `dataset` ({"mIoU","mAcc","aAcc","per_class","mode","num_images"}, percent).

    The inference mode is `mode` when given (a trainer builds its own once, checked before training), else
    the config's TEST settings with `slide` / `msc` / `flip` / `scales` winning. `should_stop`: see
    `inference_on_dataset` (a trainer's evaluation gives way to a preemption signal).

    A dataset with an `instance_spec` (Cityscapes with instanceIds files) adds the benchmark's other
    numbers: "iIoU", "category_IoU", "category_iIoU", per-class "iIoU" and "per_category". A dataset with
    `groups` (ACDC's conditions) adds "per_group" ({group: mIoU, mAcc, aAcc, per_class, num_images}) and
    "group_key", from the same pass.

    In a distributed run each rank evaluates its share and the confusion matrices are summed, so the
    result equals a single-process run exactly. A dataset without labels (`has_labels` False) gets no
    metrics: predictions are saved (when `save_pred_dir`) and the result holds the mode only.
    """
    consumers: list[Consumer] = []
    if dataset.has_labels and dataset.instance_spec is not None:
        consumers.append(InstanceSegMetrics(dataset.class_names, dataset.ignore_index, device, dataset.instance_spec))
    elif dataset.has_labels:
        consumers.append(SegMetrics.from_dataset(dataset, device))
    if dataset.has_labels and getattr(dataset, "groups", None) is not None:
        consumers.append(GroupSegMetrics.from_dataset(dataset, device))
    if not dataset.has_labels and save_pred_dir is None:
        logger.warning("the dataset has no labels and no prediction folder is given: nothing to evaluate or save")
    if save_pred_dir:
        consumers.append(PredictionWriter.from_dataset(dataset, save_pred_dir))
    mode = mode or InferenceMode.from_config(cfg, slide=slide, msc=msc, flip=flip, scales=scales, device=device)
    result = inference_on_dataset(model, dataset, cfg, device, consumers, mode, desc="evaluate",
                                  should_stop=should_stop)
    if save_pred_dir:
        logger.info("predictions written to %s", save_pred_dir)
    if not dataset.has_labels:
        logger.info("the split has no labels: metrics skipped")
    return result


def predict_dataset(
    model: Model,
    dataset: SegDataset,
    cfg: CfgNode,
    device: torch.device | str,
    out_dir: str,
    *,
    slide: bool | None = None,
    msc: bool | None = None,
    flip: bool | None = None,
    scales: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Write the prediction files of every image of `dataset` under `out_dir` (see `save_prediction`); no
    metrics, labels or not. Returns {"mode", "num_images"}."""
    mode = InferenceMode.from_config(cfg, slide=slide, msc=msc, flip=flip, scales=scales, device=device)
    result = inference_on_dataset(model, dataset, cfg, device, [PredictionWriter.from_dataset(dataset, out_dir)],
                                  mode, desc="predict")
    logger.info("predictions written to %s", out_dir)
    return result
