"""The ways to run a segmentor for inference, and the default: the fastest one that is checked correct.

    torch    the model as trained, eager
    fused    Conv+BN folded, channels_last weights and inputs (eager)
    compile  `fused` through torch.compile (inductor) with freezing: weights become constants that
             inductor prepacks for oneDNN (inference only; compiled on the first call of each input size)
    onnx     the model exported to ONNX (parity-checked on export) and run by onnxruntime

`build_runtime(model, "auto", device=...)` picks `default_runtime(device)`: on the CPU "onnx" when
onnxruntime is installed (measured fastest for BiSeNetV1 at 512x1024 on 2 cores, see
benchmarks/bench_deploy.py), else "fused"; on CUDA "fused". A model whose export fails or disagrees
with it runs "fused" under "auto", with a warning saying why. Every runtime is a callable mapping a
normalised float [N,3,H,W] batch to logits [N,C,H,W], which is what `segkit.evaluation.inference` runs.
The ONNX export of a model is cached under $SEGKIT_CACHE/onnx (default ~/.cache/segkit/onnx), keyed by
the architecture, the weights, the torch version and the opset, so only the first run pays for it.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import os

import torch
from torch import nn

from ..utils.comm import check_device
from ..utils.io import cache_dir as segkit_cache_dir
from ..evaluation.inference import Model
from ..models.fuse import prepare_for_inference
from .onnx_export import DEFAULT_OPSET, ExportError, export_onnx
from .parity import ParityError
from .runtime import OnnxLoadError, OnnxSegmentor

logger = logging.getLogger("segkit")

RUNTIMES = ("torch", "fused", "compile", "onnx")


class ChannelsLast(nn.Module):
    """Runs a channels_last model on channels_last inputs (the speed-up needs both)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def default_runtime(device: str | torch.device = "cpu") -> str:
    """The runtime "auto" stands for on `device`."""
    if torch.device(device).type == "cpu" and onnxruntime_available():
        return "onnx"
    return "fused"


def _weights_digest(model: nn.Module, opset: int) -> str:
    # The architecture (its repr names every module and shape), every tensor of the state, and the
    # exporter's version: a change in any gives another file.
    h = hashlib.sha1(f"{repr(model)}|torch {torch.__version__}|opset {opset}".encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


def cached_onnx_export(model: nn.Module, cache_dir: str | None = None, opset: int = DEFAULT_OPSET) -> str:
    """The path of the parity-checked ONNX export of `model`, exported on the first call only."""
    cache_dir = cache_dir or segkit_cache_dir("onnx")
    cpu_model = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    path = os.path.join(cache_dir, f"{type(model).__name__.lower()}-{_weights_digest(cpu_model, opset)}.onnx")
    if not os.path.isfile(path):
        logger.info("exporting %s to ONNX once (cached at %s)", type(model).__name__, path)
        export_onnx(cpu_model, path, opset=opset)
    return path


def load_cached_onnx(model: nn.Module, **runtime_kwargs) -> OnnxSegmentor:
    """`model`'s cached ONNX export in onnxruntime (`runtime_kwargs` go to OnnxSegmentor).

    A cache entry that does not load (a copy cut short by a full disk or a killed process) is removed and
    exported again, with a warning naming it, rather than failing every later run until deleted by hand.
    """
    path = cached_onnx_export(model)
    try:
        return OnnxSegmentor(path, **runtime_kwargs)
    except OnnxLoadError as e:
        logger.warning("ONNX cache entry does not load, exporting it again: %s", e)
        os.remove(path)
        return OnnxSegmentor(cached_onnx_export(model), **runtime_kwargs)


def build_runtime(
    model: nn.Module | None,
    runtime: str = "auto",
    *,
    device: str | torch.device = "cpu",
    onnx_path: str | None = None,
    num_classes: int | None = None,
    threads: int | None = None,
) -> Model:
    """`model` (any device) ready to run as `runtime` on `device`: "torch" is `model` itself, moved and in
    eval mode; the others leave it as it is.

    onnx_path: an exported file to run instead of exporting `model` (which may then be None).
    num_classes: MODEL.NUM_CLASSES, checked against an ONNX file. threads: onnxruntime intra-op threads.
    """
    device = check_device(device)  # a missing GPU is one line, not a driver error from inside .to()
    if runtime == "auto":
        name = "onnx" if onnx_path else default_runtime(device)
    elif runtime in RUNTIMES:
        name = runtime
    else:
        raise ValueError(f"unknown runtime {runtime!r}; choose auto or one of {', '.join(RUNTIMES)}")
    if name == "onnx":
        if onnx_path is None:
            try:
                return load_cached_onnx(_require(model, name), num_classes=num_classes, threads=threads,
                                        device=device.type)
            except (ExportError, ParityError) as e:
                if runtime != "auto":
                    raise
                # "auto" means the fastest correct runtime: a model without a correct export runs fused.
                logger.warning("runtime auto: no correct ONNX export (%s); running the fused PyTorch model", e)
                return build_runtime(model, "fused", device=device)
        return OnnxSegmentor(onnx_path, num_classes=num_classes, threads=threads, device=device.type)
    if onnx_path is not None:
        raise ValueError(f"an ONNX file ({onnx_path}) runs with runtime 'onnx' (or 'auto'), not {name!r}")
    model = _require(model, name)
    if name == "torch":
        return model.eval().to(device)
    fused = ChannelsLast(prepare_for_inference(model, device, fuse=True, channels_last=True))
    # Freezing only applies under no_grad/inference_mode, which is how segkit.evaluation.inference runs.
    return torch.compile(fused, options={"freezing": True}) if name == "compile" else fused


def _require(model: nn.Module | None, runtime: str) -> nn.Module:
    if model is None:
        raise ValueError(f"runtime {runtime!r} needs the PyTorch model (only an ONNX file was given)")
    return model
