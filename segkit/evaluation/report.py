"""The pictures of an evaluation report, written next to its JSON: confusion matrix and per-class IoU."""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from ..utils.plots import plot_class_iou, plot_confusion_matrix, plots_available

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
