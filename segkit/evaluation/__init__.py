"""Evaluation: inference modes (whole, sliding, multi-scale, flip), one loop over a dataset feeding consumers
(confusion-matrix metrics, prediction files), and the jobs built from them."""
from .evaluator import evaluate_dataset, predict_dataset
from .prediction_files import PredictionWriter, colorize, save_prediction
from .inference import InferenceMode, default_stride, inference, window_starts
from .loop import Consumer, SampleInfo, inference_on_dataset
from .metrics import SegMetrics, compute_metrics, confusion_matrix, format_metrics_table, metrics_to_json, save_metrics

__all__ = [
    "evaluate_dataset", "predict_dataset", "inference_on_dataset", "InferenceMode", "Consumer", "SampleInfo",
    "SegMetrics", "PredictionWriter", "inference", "window_starts", "default_stride",
    "compute_metrics", "confusion_matrix", "format_metrics_table", "metrics_to_json", "save_metrics",
    "save_prediction", "colorize",
]
