"""Deployment: ONNX export checked against PyTorch, INT8 quantization, runtimes (onnxruntime, OpenVINO, fused/compiled
torch), the Predictor, video.

Sits above models, data and evaluation; nothing below imports it.
"""
from .fastpath import PRECISIONS, RUNTIMES, build_runtime, cached_onnx_export, default_runtime, runtime_label
from .openvino_runtime import OpenVinoSegmentor
from .onnx_export import DEFAULT_OPSET, ExportError, export_onnx
from .parity import ParityError, ParityResult, check_parity
from .predictor import Predictor, config_runtime
from .quantize import DEFAULT_CALIB_IMAGES, Calibration, calibration_inputs, dataset_calibration, quantize_int8
from .runtime import OnnxSegmentor
from .video import open_video, overlay_video

__all__ = [
    "export_onnx", "ExportError", "DEFAULT_OPSET", "check_parity", "ParityError", "ParityResult",
    "OnnxSegmentor", "OpenVinoSegmentor", "quantize_int8", "calibration_inputs", "Calibration", "dataset_calibration",
    "RUNTIMES", "PRECISIONS", "build_runtime", "default_runtime", "runtime_label", "cached_onnx_export",
    "Predictor", "config_runtime", "DEFAULT_CALIB_IMAGES", "open_video", "overlay_video",
]
