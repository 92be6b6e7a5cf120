"""An exported segmentor run by onnxruntime, usable wherever a PyTorch segmentor runs inference.

`OnnxSegmentor(path, num_classes=...)` is an nn.Module without parameters whose forward maps a float
[N,3,H,W] tensor to logits [N,C,H,W] on the input's device, so `segkit.evaluation.inference` (whole,
slide, multi-scale, flip) and the evaluation loop take it as they take the model. The file is checked
when it is loaded: one input "images" [N,3,H,W] and one output "logits" [N,C,H,W], dynamic batch,
height and width, and C equal to the configured class count.

`predict_labels(x)` gives the argmax over classes [N,H,W] computed inside onnxruntime, by the same file
with an ArgMax appended (`with_argmax`): where one view at the input size is all a prediction needs,
`inference` takes it, and neither the float logits (40 MB at 512x1024 with 19 classes) nor their argmax
pass through PyTorch. ArgMax takes the first maximum, as torch.argmax does, so the labels are the argmax
of the logits `forward` returns.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..utils.onnx_meta import DEPLOY_INSTALL

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
LABELS_NAME = "labels"
# Metadata "H,W": the smallest and largest input the exported graph is valid for (no largest: unbounded).
MIN_SIZE_KEY = "segkit.min_input_size"
MAX_SIZE_KEY = "segkit.max_input_size"
EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # export (torch.onnx dynamo), parity check and run


def missing_packages(names: Sequence[str] = EXPORT_PACKAGES) -> list[str]:
    """Those of `names` that are not installed."""
    return [n for n in names if importlib.util.find_spec(n) is None]


def require_packages(names: Sequence[str], what: str) -> None:
    """Raise one ValueError naming those of `names` that are missing or fail to import, and the extra that
    installs them.

    Called before the work starts, so a missing onnxscript is not a traceback minutes into an export, or an
    ExportError blaming the model; an installed package that does not import (a broken or mismatched
    install) is imported here, so its error is that line too.
    """
    missing = missing_packages(names)
    problems = [f"{', '.join(missing)} (not installed)"] if missing else []
    for name in names:
        if name not in missing:
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - a broken install raises anything from its own code
                problems.append(f"{name} (installed, but importing it fails: {e.__class__.__name__}: {e})")
    if problems:
        raise ValueError(f"{what} needs {'; '.join(problems)}: {DEPLOY_INSTALL}")


def create_session(path: str, threads: int | None = None, device: str = "cpu", model: bytes | None = None) -> Any:
    """An onnxruntime InferenceSession of the file `path` on `device` ("cpu" or "cuda") with `threads` intra-op threads.

    model: the serialized graph to run instead of the file's (one derived from it, e.g. `with_argmax(path)`).
    """
    require_packages(("onnxruntime",), f"running {path}")
    import onnxruntime as ort  # the optional "deploy" extra: segkit.deploy imports without it

    if model is None and not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX file not found: {path}")
    options = ort.SessionOptions()
    # Without this, onnxruntime's workers spin for a while after each run and take the cores from the
    # PyTorch post-processing that follows (on 2 cores that made the argmax 5x slower).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = int(threads)
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise ValueError(f"device 'cuda' asked for {path}, but this onnxruntime offers only {available} "
                             "(install onnxruntime-gpu)")
        providers.insert(0, "CUDAExecutionProvider")
    elif device != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    try:
        return ort.InferenceSession(path if model is None else model, options, providers=providers)
    except Exception as e:  # onnxruntime's pybind errors (InvalidProtobuf, Fail, ...) name no cause a user can act on
        raise OnnxLoadError(f"cannot load ONNX file {path} ({os.path.getsize(path)} bytes): truncated, not an ONNX "
                            f"model, or written by a newer exporter; onnxruntime says: {_first_line(e)}") from e


def with_argmax(path: str) -> bytes:
    """The ONNX file `path` with its logits [N,C,H,W] replaced by their argmax over C: output "labels" int64 [N,H,W].

    ArgMax keeps the first maximum of a tie (select_last_index 0), as torch.argmax does.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(path)
    model.graph.node.append(helper.make_node("ArgMax", [OUTPUT_NAME], [LABELS_NAME], axis=1, keepdims=0,
                                             select_last_index=0))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(LABELS_NAME, TensorProto.INT64, ["N", "H", "W"]))
    return model.SerializeToString()


class OnnxLoadError(ValueError):
    """An ONNX file onnxruntime cannot load; the message names the file."""


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _dims(value: Any) -> list[int | str | None]:
    return [d if isinstance(d, (int, str)) or d is None else str(d) for d in value.shape]


def _describe(values: list[Any]) -> str:
    return ", ".join(f"{v.name} {v.type} {_dims(v)}" for v in values)


def _check_interface(session: Any, path: str) -> int | None:
    """Raise unless the file has the segkit interface; returns its class count when the file fixes it."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    expected = (f"one input '{INPUT_NAME}' float [N,3,H,W] and one output '{OUTPUT_NAME}' [N,C,H,W] "
                "with dynamic N, H, W (as tools/export_onnx.py writes)")
    if len(inputs) != 1 or len(outputs) != 1 or inputs[0].name != INPUT_NAME or outputs[0].name != OUTPUT_NAME:
        raise ValueError(f"{path} has inputs [{_describe(inputs)}] and outputs [{_describe(outputs)}]; "
                         f"segkit expects {expected}")
    x, y = _dims(inputs[0]), _dims(outputs[0])
    if inputs[0].type != "tensor(float)" or len(x) != 4 or x[1] != 3 or len(y) != 4:
        raise ValueError(f"{path}: input {inputs[0].type} {x}, output {y}; segkit expects {expected}")
    fixed = [f"{axis} {x[i]}" for i, axis in ((0, "batch"), (2, "height"), (3, "width")) if isinstance(x[i], int)]
    if fixed:
        # inference() batches views and windows and runs other sizes than any one export size.
        raise ValueError(f"{path} fixes the input's {', '.join(fixed)}; segkit expects {expected}")
    return y[1] if isinstance(y[1], int) else None


def _size(value: str | None) -> tuple[int, int] | None:
    return tuple(int(v) for v in value.split(",")) if value else None  # type: ignore[return-value]


def size_range(metadata: dict[str, str]) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """(smallest, largest or None) input size of an exported file, from its metadata (see onnx_export.py)."""
    return _size(metadata.get(MIN_SIZE_KEY)) or (1, 1), _size(metadata.get(MAX_SIZE_KEY))


def checked_input(x: torch.Tensor, path: str, low: tuple[int, int], high: tuple[int, int] | None) -> np.ndarray:
    """The batch as a contiguous float32 array, or an error when its size is outside the file's valid range."""
    h, w = x.shape[-2:]
    if h < low[0] or w < low[1] or (high is not None and (h > high[0] or w > high[1])):
        valid = f"from {low[0]}x{low[1]}" + (f" to {high[0]}x{high[1]}" if high else " up")
        raise ValueError(f"input {h}x{w} is outside the sizes {path} was exported for ({valid})")
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


class OnnxSegmentor(nn.Module):
    """onnxruntime behind the segmentor contract: float [N,3,H,W] -> logits [N,C,H,W], eval mode.

    num_classes: MODEL.NUM_CLASSES; a file with another class count is an error naming both.
    threads: onnxruntime intra-op threads (None: onnxruntime's default, every physical core).
    device: "cpu", or "cuda" with onnxruntime-gpu (tensors still pass through host memory).
    """

    def __init__(self, path: str, num_classes: int | None = None, threads: int | None = None,
                 device: str = "cpu") -> None:
        super().__init__()
        require_packages(("onnx", "onnxruntime"), f"running {path}")  # onnx: predict_labels appends the argmax
        self.path = path
        self.threads, self.device = threads, device
        self.session = create_session(path, threads, device)
        self.labels_session: Any = None  # made by the first predict_labels
        file_classes = _check_interface(self.session, path)
        if file_classes is None:
            # A foreign file may leave C symbolic: one small run tells it.
            file_classes = int(self.session.run(None, {INPUT_NAME: np.zeros((1, 3, 64, 64), np.float32)})[0].shape[1])
        if num_classes is not None and file_classes != num_classes:
            raise ValueError(f"{path} predicts {file_classes} classes but MODEL.NUM_CLASSES is {num_classes}")
        self.num_classes = file_classes
        self.min_size, self.max_size = size_range(self.session.get_modelmeta().custom_metadata_map)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = checked_input(x, self.path, self.min_size, self.max_size)
        logits = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})[0]
        return torch.from_numpy(logits).to(x.device)

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        """The argmax over classes of `forward(x)`, [N,H,W] int64, computed inside onnxruntime."""
        array = checked_input(x, self.path, self.min_size, self.max_size)
        if self.labels_session is None:
            self.labels_session = create_session(self.path, self.threads, self.device, model=with_argmax(self.path))
        return torch.from_numpy(self.labels_session.run([LABELS_NAME], {INPUT_NAME: array})[0]).to(x.device)

    def extra_repr(self) -> str:
        return f"path={self.path!r}, num_classes={self.num_classes}"
