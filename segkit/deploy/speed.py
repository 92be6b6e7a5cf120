"""The speed protocol: every runtime segkit offers, timed on one model in one round-robin, beside the machine's limits.

For one model and one input size (batch 1), each runtime of `variants(device)` is built from the same
weights (`build_runtime`: the ONNX export is parity-checked, OpenVINO fp32 too; INT8 is calibrated on
rendered street scenes at the first size), and timed twice:

    model      the runtime's forward pass on a normalised float [1,3,H,W] tensor
    predictor  `segkit.Predictor` end to end on a BGR uint8 frame: normalisation, the runtime, argmax
               (inside the runtime for ONNX Runtime and OpenVINO), the uint8 map copied out (decoding a
               file excluded); whole image at scale 1

All warm-ups run first (torch.compile compiles there), then the timed repetitions go round-robin over
every runtime and both timings, so drift and load on the machine hit all of them alike
(`segkit.utils.analysis.measure_latency`). Weights are random and seeded: speed does not depend on them.
Each time is set beside the limit of its precision (`segkit.utils.machine.compute_limits`: cores x
operations per cycle x the nominal clock). A large fp32 GEMM (`gemm_probe`) is timed in the same round-robin
and its rate recorded: what the machine delivered to dense fp32 arithmetic during that model's run, which on
a virtual machine can differ from the nominal clock in either direction and from one run to the next.

`references` adds outside implementations of the same network (another repository's eager model) to the
same round-robin, forward pass only, so "segkit's Predictor at 0.2x of X's forward" is a ratio of one run.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from ..data import render_scene
from ..data.seg_transforms import normalise, normalise_luts
from ..utils.analysis import count_flops, count_params, measure_latency
from ..utils.machine import limit_ms
from .fastpath import EXACT, build_runtime, default_runtime, missing_packages
from .openvino_runtime import cpu_has_bf16, openvino_available
from .predictor import Predictor
from .quantize import Calibration

logger = logging.getLogger("segkit")


@dataclass(frozen=True)
class Variant:
    """One way to run a model: a `build_runtime` runtime and precision (CUDA: optionally under autocast)."""

    name: str
    runtime: str
    precision: str
    title: str
    autocast: str | None = None  # "float16" / "bfloat16": CUDA autocast around the fused model
    int8_ops: tuple[str, ...] | None = None  # the operator types its INT8 model quantizes (None: all)

    @property
    def exact(self) -> bool:
        return self.precision == EXACT and self.autocast is None

    @property
    def limit_precision(self) -> str:
        """The compute limit the variant is held against: its lowest arithmetic."""
        if self.precision.startswith("int8"):
            return "int8"
        return "bf16" if self.precision == "bf16" or self.autocast else "fp32"


CPU_VARIANTS = (
    Variant("eager", "torch", "fp32", "eager"),
    Variant("fused", "fused", "fp32", "fused+channels_last"),
    Variant("compile", "compile", "fp32", "torch.compile"),
    Variant("ort_fp32", "onnx", "fp32", "ONNX Runtime fp32"),
    Variant("ort_int8", "onnx", "int8", "ONNX Runtime INT8"),
    Variant("ov_fp32", "openvino", "fp32", "OpenVINO fp32"),
    Variant("ov_bf16", "openvino", "bf16", "OpenVINO bf16"),
    Variant("ov_int8", "openvino", "int8", "OpenVINO INT8"),
    Variant("ov_int8_bf16", "openvino", "int8+bf16", "OpenVINO INT8+bf16"),
    # INT8 of the convolutions only (--int8-ops Conv): slower, but lossless where OpenVINO's INT8 of the
    # elementwise layers is not (RESULTS.md, PIDNet-S).
    Variant("ort_int8_conv", "onnx", "int8", "ONNX Runtime INT8 (Conv)", int8_ops=("Conv",)),
    Variant("ov_int8_conv", "openvino", "int8", "OpenVINO INT8 (Conv)", int8_ops=("Conv",)),
)
CUDA_VARIANTS = (
    Variant("eager", "torch", "fp32", "eager"),
    Variant("fused", "fused", "fp32", "fused+channels_last"),
    Variant("compile", "compile", "fp32", "torch.compile"),
    Variant("fused_fp16", "fused", "fp32", "fused+channels_last fp16 autocast", autocast="float16"),
    Variant("fused_bf16", "fused", "fp32", "fused+channels_last bf16 autocast", autocast="bfloat16"),
    Variant("ort_cuda", "onnx", "fp32", "ONNX Runtime CUDA fp32"),
)


def variants(device: str | torch.device = "cpu") -> tuple[Variant, ...]:
    """The variants this machine can run on `device` (those whose packages or CPU units are missing left out)."""
    if torch.device(device).type == "cuda":
        return CUDA_VARIANTS
    have_onnx = not missing_packages()  # export, parity check and run: what OpenVINO's export needs too
    have_ov = openvino_available() and have_onnx
    bf16 = have_ov and cpu_has_bf16()
    keep = []
    for v in CPU_VARIANTS:
        if v.runtime == "onnx" and not have_onnx:
            continue
        if v.runtime == "openvino" and (not have_ov or ("bf16" in v.precision and not bf16)):
            continue
        keep.append(v)
    return tuple(keep)


class Autocast(nn.Module):
    """A runner under CUDA autocast (fp16 or bf16 arithmetic, fp32 logits out)."""

    def __init__(self, runner: Callable[[torch.Tensor], torch.Tensor], dtype: str) -> None:
        super().__init__()
        self.runner = runner
        self.dtype = getattr(torch, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=self.dtype):
            return self.runner(x).float()


def rendered_calibration(size: tuple[int, int], num_images: int, mean, std) -> Calibration:
    """Normalised rendered street scenes [1,3,H,W] at `size` (no dataset needed)."""

    def inputs() -> Iterator[np.ndarray]:
        luts = normalise_luts(mean, std)
        rng = np.random.default_rng(0)
        for _ in range(num_images):
            image, _ = render_scene(rng, *size)
            yield normalise(image, luts)[None]

    return Calibration(f"rendered|{size}|{num_images}|{list(mean)}|{list(std)}", inputs)


def build_variant(model: nn.Module, variant: Variant, device: torch.device, threads: int | None,
                  calibration: Calibration, num_classes: int) -> Callable[[torch.Tensor], torch.Tensor]:
    runner = build_runtime(model, variant.runtime, device=device, precision=variant.precision, threads=threads,
                           calibration=calibration, num_classes=num_classes, int8_ops=variant.int8_ops)
    return Autocast(runner, variant.autocast) if variant.autocast else runner


PROBE = "gemm_fp32"  # the timing key of the probe below
GEMM_N = 1536  # 7.2 GFLOP: about as long as a real-time model's forward pass at 512x1024 on two cores


def gemm_probe(device: torch.device, n: int = GEMM_N) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """An n x n fp32 matrix product (ignoring its argument) and its GFLOP: BLAS runs it close to the FMA units'
    peak, so its rate shows the speed the machine had during a run (a record of conditions, not a limit: the
    runtimes that follow other thread pools in the round-robin, this probe included, can lose time to them)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device) for _ in range(2))
    return (lambda x: torch.mm(a, b)), 2 * n ** 3 / 1e9


def model_facts(model: nn.Module, sizes: list[tuple[int, int]]) -> dict[str, Any]:
    """Parameters (with / without auxiliary heads) and GFLOPs at each size."""
    facts: dict[str, Any] = dict(count_params(model))
    facts["gflops"] = {f"{h}x{w}": count_flops(model, (h, w)) / 1e9 for h, w in sizes}
    return facts


def time_model(
    cfg: CfgNode,
    model: nn.Module,
    sizes: list[tuple[int, int]],
    chosen: tuple[Variant, ...],
    limits: dict[str, dict],
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    warmup: int = 3,
    iters: int = 10,
    calib_images: int = 8,
    predictor: bool = True,
    references: dict[str, tuple[str, nn.Module]] | None = None,
) -> dict[str, Any]:
    """Facts and the latency of every variant at every size: {size: {variant: {model, predictor, limit_ms, ...}}}.

    A variant that cannot be built (an export that fails, a missing unit) is recorded with its error and
    the others still run. `cfg` is the model's config; the Predictor runs its whole image at scale 1.
    references: {name: (title, module)} timed beside them (forward pass, fp32 limit), recorded as runtime
    "reference".
    """
    device = torch.device(device)
    model = model.eval()
    facts = model_facts(model, sizes)
    whole = cfg.clone()
    whole.defrost()
    whole.merge_from_list(["TEST.SCALE", 1.0, "TEST.MSC", False, "TEST.FLIP", False, "TEST.SLIDE", False])
    calibration = rendered_calibration(sizes[0], calib_images, cfg.INPUT.MEAN, cfg.INPUT.STD)
    num_classes = int(cfg.MODEL.NUM_CLASSES)
    runners, errors = {}, {}
    for v in chosen:
        try:
            runners[v.name] = build_variant(model, v, device, threads, calibration, num_classes)
        except Exception as e:  # any failure to build is a result of its own; the other variants still run
            logger.warning("%s: variant %s not built: %s", type(model).__name__, v.name, e)
            errors[v.name] = f"{type(e).__name__}: {e}"
    predictors = {name: Predictor(whole, r, device=device) for name, r in runners.items()} if predictor else {}
    gemm, probe_gflop = gemm_probe(device)
    latency: dict[str, dict] = {}
    for h, w in sizes:
        frame, _ = render_scene(np.random.default_rng(1), h, w)
        timed: dict[str, Callable] = {}
        timed[f"{PROBE}|model"] = gemm
        for name, (_, module) in (references or {}).items():
            timed[f"{name}|model"] = module.eval()
        for name, runner in runners.items():
            timed[f"{name}|model"] = runner
            if name in predictors:
                timed[f"{name}|predictor"] = lambda x, p=predictors[name], f=frame: p(f)
        key = f"{h}x{w}"
        try:
            measured = measure_latency(timed, (h, w), device, warmup=warmup, iters=iters)
        except Exception as e:  # e.g. out of memory at the larger size: the smaller one's figures stand
            logger.warning("%s at %s not timed: %s", type(model).__name__, key, e)
            errors[key] = f"{type(e).__name__}: {e}"
            continue
        gflops = facts["gflops"][key]
        probe = measured.pop(f"{PROBE}|model")
        facts.setdefault("gemm_probe", {})[key] = {"n": GEMM_N, "gflop": probe_gflop, "median_ms": probe["median_ms"],
                                                   "gflops_per_s": probe_gflop / (probe["median_ms"] / 1000)}

        def row(name: str, title: str, runtime: str, precision: str, exact: bool, limit_precision: str) -> dict:
            limit = limits.get(limit_precision)
            return {"title": title, "runtime": runtime, "precision": precision, "exact": exact,
                    "model": measured[f"{name}|model"], "predictor": measured.get(f"{name}|predictor"),
                    "limit": limit_precision if limit else None,
                    "limit_ms": limit_ms(gflops, limit) if limit else None}

        rows = {name: row(name, title, "reference", "fp32", True, "fp32") for name, (title, _) in (references or {}).items()}
        for v in chosen:
            if v.name in runners:
                rows[v.name] = row(v.name, v.title, v.runtime, v.precision, v.exact, v.limit_precision)
                if v.int8_ops:
                    rows[v.name]["int8_ops"] = list(v.int8_ops)
        latency[key] = rows
    facts.update(latency=latency, errors=errors, default_runtime=default_runtime(device))
    return facts
