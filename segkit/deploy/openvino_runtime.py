"""An exported segmentor run by OpenVINO on the CPU, with the segmentor contract of `OnnxSegmentor`.

OpenVINO reads the same ONNX file onnxruntime runs (the parity-checked fp32 export, or its INT8 QDQ
model) and compiles it for the CPU. The arithmetic is chosen explicitly, never by default:

    fp32   INFERENCE_PRECISION_HINT f32: exact (checked against PyTorch like the ONNX path)
    bf16   INFERENCE_PRECISION_HINT bf16: convolutions and matmuls in bfloat16 (AMX or AVX512-BF16)

OpenVINO's own default on a CPU with AMX or AVX512-BF16 is bf16, which changes the logits; segkit always
sets the hint, so an fp32 run is fp32. On an INT8 QDQ file the quantized layers run in int8 and the hint
decides the rest (fp32, or bf16 for "int8+bf16").

`predict_labels(x)` compiles, on its first call, the same model with a TopK over classes appended (the
first maximum wins a tie, as in torch.argmax; the tests hold OpenVINO to it) and returns the labels [N,H,W]:
a single view at the input size then needs neither the logits copied out of OpenVINO nor an argmax in
PyTorch (see `inference`).
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .runtime import INPUT_NAME, OUTPUT_NAME, checked_input, require_packages, size_range
from ..utils.onnx_meta import onnx_metadata

HINTS = {"fp32": "f32", "bf16": "bf16"}  # segkit precision -> OpenVINO element type of the hint


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def _core() -> Any:
    require_packages(("openvino",), "runtime openvino")  # the optional "deploy" extra
    import openvino as ov

    return ov.Core()


def cpu_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes in bf16 here (AMX or AVX512-BF16)."""
    return openvino_available() and "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _with_argmax(model: Any) -> Any:
    """A copy of the OpenVINO model whose output is the argmax over classes of its logits, int32 [N,H,W]."""
    import openvino as ov

    logits = model.get_results()[0].input_value(0)
    # k 1, unsorted: the CPU plugin then returns the first of equal maxima, as torch.argmax does (the tests
    # check ties at small and frame sizes). The stable sort, which promises it, took 42 ms instead of 36 for
    # BiSeNetV1 INT8+bf16 at 512x1024, TopK alone 19 ms instead of 11.
    top = ov.opset11.topk(logits, np.int64(1), 1, "max", "none", "i32", stable=False)
    labels = ov.opset1.squeeze(top.output(1), np.array([1], np.int64))
    return ov.Model([labels], model.get_parameters(), "labels")


class OpenVinoSegmentor(nn.Module):
    """OpenVINO behind the segmentor contract: float [N,3,H,W] -> logits [N,C,H,W], eval mode.

    precision: "fp32" or "bf16" (the hint above). num_classes: MODEL.NUM_CLASSES, checked against the file.
    threads: OpenVINO's inference threads (None: its default, every core).
    """

    def __init__(self, path: str, num_classes: int | None = None, threads: int | None = None,
                 precision: str = "fp32") -> None:
        super().__init__()
        if precision not in HINTS:
            raise ValueError(f"OpenVINO precision must be one of {', '.join(HINTS)}, got {precision!r}")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX file not found: {path}")
        require_packages(("onnx", "openvino"), f"runtime openvino ({path})")  # onnx reads the file's size range
        core = _core()
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise ValueError(f"precision bf16 asked for {path}, but this CPU has neither AMX nor AVX512-BF16 "
                             "(OpenVINO lists no BF16 capability); use fp32 or int8")
        self.path = path
        self.precision = precision
        model = core.read_model(path)
        self.num_classes = self._check_interface(model, path, num_classes)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._core, self._model, self._config = core, model, config
        self.labels_request: Any = None  # made by the first predict_labels
        self.min_size, self.max_size = size_range(onnx_metadata(path))
        self.eval()

    @staticmethod
    def _check_interface(model: Any, path: str, num_classes: int | None) -> int | None:
        inputs, outputs = model.inputs, model.outputs
        names_in = [sorted(i.get_names()) for i in inputs]
        names_out = [sorted(o.get_names()) for o in outputs]
        if (len(inputs) != 1 or len(outputs) != 1 or INPUT_NAME not in names_in[0]
                or OUTPUT_NAME not in names_out[0]):
            raise ValueError(f"{path} has inputs {names_in} and outputs {names_out}; segkit expects one input "
                             f"'{INPUT_NAME}' and one output '{OUTPUT_NAME}' (as tools/export_onnx.py writes)")
        x, y = inputs[0].get_partial_shape(), outputs[0].get_partial_shape()
        if x.rank.get_length() != 4 or not x[1].is_static or x[1].get_length() != 3 or y.rank.get_length() != 4:
            raise ValueError(f"{path}: input {x}, output {y}; segkit expects [N,3,H,W] -> [N,C,H,W]")
        file_classes = y[1].get_length() if y[1].is_static else None
        if num_classes is not None and file_classes is not None and file_classes != num_classes:
            raise ValueError(f"{path} predicts {file_classes} classes but MODEL.NUM_CLASSES is {num_classes}")
        return file_classes or num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = checked_input(x, self.path, self.min_size, self.max_size)
        logits = self.request.infer({INPUT_NAME: array})[self.compiled.output(0)]
        return torch.from_numpy(logits.copy()).to(x.device)  # the request reuses its output buffer

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        """The argmax over classes of `forward(x)`, [N,H,W] int32, computed inside OpenVINO."""
        array = checked_input(x, self.path, self.min_size, self.max_size)
        if self.labels_request is None:
            self.labels_request = self._core.compile_model(_with_argmax(self._model), "CPU",
                                                           self._config).create_infer_request()
        labels = self.labels_request.infer({INPUT_NAME: array})[0]
        return torch.from_numpy(labels.copy()).to(x.device)  # a reused buffer too; one plane, not C

    def extra_repr(self) -> str:
        return f"path={self.path!r}, num_classes={self.num_classes}, precision={self.precision}"
