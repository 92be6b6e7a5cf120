"""The pictures of an evaluation: confusion matrix and per-class IoU next to its JSON, and colour-coded
val predictions for TensorBoard."""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from yacs.config import CfgNode

from ..data import SegDataset
from ..utils.plots import plot_class_iou, plot_confusion_matrix, plots_available
from .inference import InferenceMode, inference
from .prediction_files import colorize

logger = logging.getLogger("segkit")


def write_report_plots(metrics: dict[str, Any], json_path: str) -> list[str]:
    """Write <stem>_confusion.png and <stem>_iou.png beside `json_path`; returns their paths.

    Without matplotlib (pip install -e ".[vis]") nothing is drawn and one line says so.
    """
    if "confusion_matrix" not in metrics:
        return []
    if not plots_available():
        logger.info('pictures skipped: matplotlib is not installed (pip install -e ".[vis]")')
        return []
    stem = os.path.splitext(json_path)[0]
    names = list(metrics["per_class"])
    title = f"{metrics.get('split', '')} mIoU {metrics['mIoU']:.2f}".strip()
    return [
        plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), names, f"{stem}_confusion.png",
                              title=f"confusion matrix, row-normalised (%) - {title}"),
        plot_class_iou({n: m["IoU"] for n, m in metrics["per_class"].items()}, f"{stem}_iou.png",
                       title=f"per-class IoU - {title}"),
    ]


# The scalars of an evaluation that go to events.jsonl / TensorBoard.
SUMMARY_METRICS = ("mIoU", "mAcc", "aAcc", "iIoU", "category_IoU", "category_iIoU")


@torch.no_grad()
def val_pictures(model: torch.nn.Module, dataset: SegDataset, cfg: CfgNode, device: torch.device,
                 count: int) -> list[np.ndarray]:
    """The first `count` images of `dataset` as RGB strips: ground truth and prediction, colour-coded.

    Whole-image inference at TEST.SCALE, so the pictures cost `count` forward passes."""
    was_training = model.training
    model.eval()
    pictures = []
    mode = InferenceMode.from_config(cfg, slide=False, msc=False, flip=False)  # one view at TEST.SCALE
    try:
        for i in range(min(count, len(dataset))):
            item = dataset[i]
            label = item["label"].numpy()
            pred = inference(model, item["image"], mode, num_classes=dataset.num_classes, out_size=label.shape,
                             return_probs=False).cpu().numpy()
            gt = colorize(label, dataset.palette)  # the ignore index lies past the palette: black
            pictures.append(np.concatenate([gt, colorize(pred, dataset.palette)], axis=1))
    finally:
        model.train(was_training)
    return pictures
