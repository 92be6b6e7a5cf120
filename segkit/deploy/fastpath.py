"""The ways to run a segmentor for inference, and the default: the fastest one that is checked correct.

    torch     the model as trained, eager
    fused     Conv+BN folded, channels_last weights and inputs (eager)
    compile   `fused` through torch.compile (inductor) with freezing: weights become constants that
              inductor prepacks for oneDNN (inference only; compiled on the first call of each input size)
    onnx      the model exported to ONNX (parity-checked on export) and run by onnxruntime
    openvino  the same ONNX file compiled by OpenVINO for the CPU (fp32 checked against PyTorch too)

Precision is a separate choice, and a lossy one is never made silently:

    fp32       exact: every runtime (the default)
    int8       the static QDQ INT8 model (quantize.py) on onnx or openvino; calibrated on `calibration`
    bf16       OpenVINO with bf16 arithmetic (CPUs with AMX or AVX512-BF16)
    int8+bf16  the INT8 model on OpenVINO, its non-quantized layers in bf16

`build_runtime(model, "auto", device=...)` picks `default_runtime(device, precision)`: for fp32 on the CPU
"onnx" when onnx, onnxscript and onnxruntime are installed (measured fastest exact runtime, see
benchmarks/bench_models.py and RESULTS.md), else "fused" with one log line naming the missing package; on
CUDA "fused". For a lossy precision "auto" is OpenVINO when installed (onnxruntime for int8 otherwise).
A model whose export fails or disagrees with it runs "fused" under "auto", with a warning saying why.
Runtime onnx or openvino, chosen or taken for an ONNX file, checks its packages before any export: a missing
one is one ValueError naming it and the deploy extra (`exported_packages`).
Every runtime is a callable mapping a normalised float [N,3,H,W] batch to logits [N,C,H,W], which is what
`segkit.evaluation.inference` runs; the exported ones also take the argmax themselves (`predict_labels`),
which inference uses for one whole view at the input size. `runtime_label(runner)` says which runtime and
precision it is ("onnx fp32"), and build_runtime logs it. The ONNX export of a model is cached under $SEGKIT_CACHE/onnx
(default ~/.cache/segkit/onnx), keyed by the architecture, the weights, the torch version and the opset,
so only the first run pays for it; an INT8 model is cached beside it, keyed by its calibration.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

from ..utils.comm import check_device
from ..utils.io import cache_dir as segkit_cache_dir, check_writable
from ..evaluation.inference import Model
from ..models.fuse import prepare_for_inference
from .onnx_export import CHECK_SIZES, DEFAULT_OPSET, ExportError, export_onnx
from .openvino_runtime import OpenVinoSegmentor, openvino_available
from .parity import ParityError, check_parity
from .quantize import Calibration, cached_int8, is_quantized
from .runtime import DEPLOY_INSTALL, EXPORT_PACKAGES, OnnxLoadError, OnnxSegmentor, missing_packages, require_packages

logger = logging.getLogger("segkit")

RUNTIMES = ("torch", "fused", "compile", "onnx", "openvino")
PRECISIONS = ("fp32", "bf16", "int8", "int8+bf16")
EXACT = "fp32"
# Which precisions each runtime offers (the PyTorch ones: fp32; lower precision there is TEST.AMP on CUDA).
RUNTIME_PRECISIONS = {"torch": ("fp32",), "fused": ("fp32",), "compile": ("fp32",), "onnx": ("fp32", "int8"),
                      "openvino": PRECISIONS}


class ChannelsLast(nn.Module):
    """Runs a channels_last model on channels_last inputs (the speed-up needs both)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def default_runtime(device: str | torch.device = "cpu", precision: str = EXACT) -> str:
    """The runtime "auto" stands for on `device` at `precision` (fp32: the fastest exact runtime)."""
    cpu = torch.device(device).type == "cpu"
    if precision == EXACT:
        return "onnx" if cpu and not missing_packages() else "fused"
    if not cpu:
        raise ValueError(f"precision {precision} runs on the CPU runtimes (onnx, openvino); on CUDA, lower "
                         "precision is TEST.AMP (autocast) of the PyTorch runtimes")
    # OpenVINO runs the ONNX export, which needs all of EXPORT_PACKAGES (onnxruntime checks it on export).
    if openvino_available() and not missing_packages():
        return "openvino"
    if precision == "int8" and not missing_packages():
        return "onnx"
    runs_on = "OpenVINO or onnxruntime (with onnx and onnxscript to export)" if precision == "int8" else "OpenVINO"
    raise ValueError(f"precision {precision} runs on {runs_on}; not installed: "
                     f"{', '.join(missing_packages((*EXPORT_PACKAGES, 'openvino')))}: {DEPLOY_INSTALL}")


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
        # Before the export: an unwritable cache is a line naming where it is and how to move it.
        check_writable(cache_dir, "the ONNX cache (under $SEGKIT_CACHE, default ~/.cache/segkit)", folder=True)
        logger.info("exporting %s to ONNX once (cached at %s)", type(model).__name__, path)
        export_onnx(cpu_model, path, opset=opset)
    return path


def load_cached_onnx(model: nn.Module, path: str, **runtime_kwargs) -> OnnxSegmentor:
    """`model`'s cached ONNX export `path` (from `cached_onnx_export`) in onnxruntime (`runtime_kwargs` go to
    OnnxSegmentor).

    A cache entry that does not load (a copy cut short by a full disk or a killed process) is removed and
    exported again, with a warning naming it, rather than failing every later run until deleted by hand.
    """
    try:
        return OnnxSegmentor(path, **runtime_kwargs)
    except OnnxLoadError as e:
        logger.warning("ONNX cache entry does not load, exporting it again: %s", e)
        os.remove(path)
        return OnnxSegmentor(cached_onnx_export(model), **runtime_kwargs)


def runtime_label(runner: Model) -> str:
    """"<runtime> <precision>" of a runner `build_runtime` made (a plain model: "torch fp32")."""
    return getattr(runner, "segkit_runtime", "torch fp32")


def _resolve(runtime: str, precision: str, device: torch.device, onnx_path: str | None) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if runtime == "auto":
        if onnx_path and precision == EXACT:
            return "onnx"
        name = default_runtime(device, precision)
        if name == "fused" and device.type == "cpu" and precision == EXACT:
            missing = missing_packages()
            logger.warning("runtime auto: %s not installed (%s); running the fused PyTorch model, about 2x slower "
                           "than onnxruntime on a CPU", ", ".join(missing), DEPLOY_INSTALL)
        return name
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose auto or one of {', '.join(RUNTIMES)}")
    if precision not in RUNTIME_PRECISIONS[runtime]:
        offering = [r for r, p in RUNTIME_PRECISIONS.items() if precision in p]
        raise ValueError(f"runtime {runtime} has no precision {precision} (it offers "
                         f"{', '.join(RUNTIME_PRECISIONS[runtime])}); {precision} runs on {', '.join(offering)}")
    return runtime


def exported_packages(runtime: str, onnx_path: str | None = None) -> tuple[str, ...]:
    """The packages runtime "onnx" or "openvino" needs, for an ONNX file `onnx_path` or a model to export.

    A model is exported by torch.onnx (which writes through onnx and onnxscript) and checked by onnxruntime; a
    file is read by onnx (its size range, whether it is INT8). Quantizing a file to INT8 for OpenVINO also needs
    onnxruntime, which `quantize_int8` checks.
    """
    if onnx_path is None:
        needed = EXPORT_PACKAGES
    else:
        needed = ("onnx", "onnxruntime") if runtime == "onnx" else ("onnx",)
    return (*needed, "openvino") if runtime == "openvino" else needed


def build_runtime(
    model: nn.Module | None,
    runtime: str = "auto",
    *,
    device: str | torch.device = "cpu",
    onnx_path: str | None = None,
    num_classes: int | None = None,
    threads: int | None = None,
    precision: str = EXACT,
    calibration: Calibration | None = None,
    int8_ops: Sequence[str] | None = None,
) -> Model:
    """`model` (any device) ready to run as `runtime` at `precision` on `device`: "torch" is `model` itself,
    moved and in eval mode; the others leave it as it is.

    onnx_path: an exported file to run instead of exporting `model` (which may then be None); an INT8 file
    runs as int8 (int8+bf16 with precision bf16), since choosing it chose the precision.
    num_classes: MODEL.NUM_CLASSES, checked against an ONNX file. threads: onnxruntime/OpenVINO threads.
    calibration: the images that calibrate an INT8 model made here (precision int8 from an fp32 model or file).
    int8_ops: the operator types that INT8 model quantizes, e.g. ["Conv"] (None: every type; see `quantize_int8`).
    """
    device = check_device(device)  # a missing GPU is one line, not a driver error from inside .to()
    if int8_ops and not precision.startswith("int8"):
        raise ValueError(f"int8_ops {list(int8_ops)} chooses what precision int8 or int8+bf16 quantizes; "
                         f"precision {precision} quantizes nothing")
    name = _resolve(runtime, precision, device, onnx_path)
    if name in ("onnx", "openvino"):
        # Before any export: a missing package otherwise surfaces after minutes of it, as a long traceback.
        source = f"(ONNX file {onnx_path})" if onnx_path else "(exports the model to ONNX)"
        require_packages(exported_packages(name, onnx_path), f"runtime {name} {source}")
        try:
            runner = _exported_runtime(model, name, precision, onnx_path, num_classes, threads, calibration, device,
                                        int8_ops)
        except (ExportError, ParityError) as e:
            if runtime != "auto" or precision != EXACT:
                raise
            # "auto" means the fastest correct runtime: a model without a correct export runs fused.
            logger.warning("runtime auto: no correct ONNX export (%s); running the fused PyTorch model", e)
            return build_runtime(model, "fused", device=device)
    else:
        if onnx_path is not None:
            raise ValueError(f"an ONNX file ({onnx_path}) runs with runtime onnx, openvino or auto, not {name!r}")
        model = _require(model, name)
        if name == "torch":
            runner = model.eval().to(device)
        else:
            runner = ChannelsLast(prepare_for_inference(model, device, fuse=True, channels_last=True))
            if name == "compile":
                # Freezing only applies under no_grad/inference_mode, which is how segkit.evaluation.inference runs.
                runner = torch.compile(runner, options={"freezing": True})
        runner.segkit_runtime = f"{name} {EXACT}"
    logger.info("runtime: %s%s", runtime_label(runner), " (auto)" if runtime == "auto" else "")
    return runner


def _exported_runtime(model: nn.Module | None, name: str, precision: str, onnx_path: str | None,
                      num_classes: int | None, threads: int | None, calibration: Calibration | None,
                      device: torch.device, int8_ops: Sequence[str] | None = None) -> nn.Module:
    fp32_path = onnx_path or cached_onnx_export(_require(model, name))
    quantized_file = onnx_path is not None and is_quantized(onnx_path)
    if quantized_file:
        precision = {"fp32": "int8", "bf16": "int8+bf16"}.get(precision, precision)
        if precision == "int8+bf16" and name != "openvino":
            raise ValueError(f"{onnx_path} is INT8; int8+bf16 runs on runtime openvino")
        if int8_ops:
            raise ValueError(f"{onnx_path} is INT8 already: its operator types were chosen when it was quantized "
                             f"(int8_ops {list(int8_ops)} applies to an fp32 model)")
        logger.info("%s is an INT8 (quantized) file: running it as precision %s", onnx_path, precision)
    path = fp32_path
    if precision.startswith("int8") and not quantized_file:
        if calibration is None:
            raise ValueError(f"precision {precision} quantizes {fp32_path} to INT8 and needs calibration images "
                             "(tools: DATASET.TRAIN_SPLIT, --calib-images; Python: calibration=dataset_calibration(cfg))")
        path = cached_int8(fp32_path, calibration, op_types=int8_ops)
    if name == "onnx" and path == fp32_path and onnx_path is None:
        runner = load_cached_onnx(model, path, num_classes=num_classes, threads=threads, device=device.type)
    elif name == "onnx":
        runner = OnnxSegmentor(path, num_classes=num_classes, threads=threads, device=device.type)
    else:
        if device.type != "cpu":
            raise ValueError(f"runtime openvino runs on the CPU, not {device}")
        hint = "bf16" if precision in ("bf16", "int8+bf16") else "fp32"
        runner = OpenVinoSegmentor(path, num_classes=num_classes, threads=threads, precision=hint)
        if precision == EXACT and model is not None:
            _check_openvino_parity(model, path, runner, num_classes)
    runner.segkit_runtime = f"{name} {precision}"
    return runner


def _check_openvino_parity(model: nn.Module, path: str, runner: OpenVinoSegmentor, num_classes: int | None) -> None:
    """OpenVINO's fp32 against the model at the export check's sizes, as onnxruntime was checked on export."""
    cpu_model = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    with torch.inference_mode():
        results = check_parity(cpu_model.eval(), path, CHECK_SIZES, num_classes=num_classes, runner=runner)
    failed = [r for r in results if not r.ok]
    if failed:
        raise ParityError(f"OpenVINO fp32 disagrees with PyTorch on {path}: " + "; ".join(r.describe() for r in failed))
    for r in results:
        logger.info("OpenVINO fp32 parity: %s", r.describe())


def _require(model: nn.Module | None, runtime: str) -> nn.Module:
    if model is None:
        raise ValueError(f"runtime {runtime!r} needs the PyTorch model (only an ONNX file was given)")
    return model
