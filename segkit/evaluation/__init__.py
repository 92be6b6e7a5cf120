"""Evaluation: inference modes (whole, sliding, multi-scale, flip), confusion-matrix metrics, export."""
from .evaluator import evaluate_dataset, resolve_mode
from .export import colorize, save_prediction
from .inference import default_stride, inference, window_starts
from .metrics import compute_metrics, confusion_matrix, format_metrics_table, metrics_to_json, save_metrics

__all__ = [
    "evaluate_dataset", "resolve_mode", "inference", "window_starts", "default_stride",
    "compute_metrics", "confusion_matrix", "format_metrics_table", "metrics_to_json", "save_metrics",
    "save_prediction", "colorize",
]
