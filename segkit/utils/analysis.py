"""Model facts and speed: parameters (with and without auxiliary heads), FLOPs, latency.

FLOPs are 2 x multiply-adds of the convolutions and matmuls of the eval-mode model at batch 1
(torch.utils.flop_counter.FlopCounterMode), counted on the meta device, so even a CPU-only machine
counts a 1024x2048 input instantly. Norms, activations, pooling and interpolation are not counted;
that is the convention of the published BiSeNet figures (236.7 G for V1, 196.8 G for V2).
"""
from __future__ import annotations

import copy
import statistics
import time
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> dict[str, int]:
    """Parameters in total and without the training-only auxiliary heads (`model.aux_names`)."""
    total = sum(p.numel() for p in model.parameters())
    aux = sum(p.numel() for name in getattr(model, "aux_names", ()) for p in getattr(model, name).parameters())
    return {"params": total, "params_no_aux": total - aux}


def count_flops(model: nn.Module, size: tuple[int, int]) -> int:
    """FLOPs (2 x multiply-adds) of one eval-mode forward pass at batch 1, counted on the meta device."""
    meta = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(1, 3, *size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(x)
    return int(counter.get_total_flops())


def time_interleaved(fns: dict[str, Callable[[], object]], iters: int, warmup: int = 1,
                     device: torch.device | None = None) -> dict[str, list[float]]:
    """Seconds of each call of each fn: `warmup` untimed calls each first, then `iters` rounds calling them
    in turn. Interleaving makes the load of a shared machine hit every fn alike, so the ratios stay
    meaningful. On a CUDA `device` the GPU is synchronised around every timed call."""

    def sync() -> None:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(iters):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[key].append(time.perf_counter() - start)
    return times


def measure_latency(
    models: dict[str, Callable[[torch.Tensor], object]],
    size: tuple[int, int],
    device: torch.device,
    half: bool = False,
    warmup: int = 3,
    iters: int = 10,
    batch: int = 1,
) -> dict[str, dict[str, float]]:
    """Median / min latency (ms), FPS and every timed run of each model, warm-ups first, timed runs interleaved.

    Interleaving iteration by iteration makes the load of a shared machine hit every variant alike, so
    the ratios stay meaningful (`time_interleaved`). A name containing "channels_last" or "fused" gets a
    channels_last input.
    """
    dtype = torch.float16 if half else torch.float32
    calls = {}
    for name, m in models.items():
        x = torch.randn(batch, 3, *size, device=device, dtype=dtype)
        if "channels_last" in name or "fused" in name:
            x = x.contiguous(memory_format=torch.channels_last)
        calls[name] = _forward_call(m, x)
    times = time_interleaved(calls, iters, warmup, device)
    return {
        name: {"median_ms": 1000.0 * statistics.median(t), "min_ms": 1000.0 * min(t),
               "fps": batch / statistics.median(t), "runs_ms": [round(1000.0 * v, 3) for v in t]}
        for name, t in times.items()
    }


def _forward_call(model: Callable[[torch.Tensor], object], x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode():
            model(x)

    return run


def min_batch_per_process(model: nn.Module, size: tuple[int, int]) -> int:
    """1, or 2 when a training forward pass of one image fails: a BatchNorm over a 1x1 map (pooled
    context, image pooling, a 1x1 pyramid bin) has a single value per channel to normalise.

    Found by running the train-mode model on the meta device, so no weights move and no time is spent.
    """
    meta = copy.deepcopy(model).to("meta").train()
    try:
        meta(torch.empty(1, 3, *size, device="meta"))
    except ValueError as e:
        if "more than 1 value per channel" in str(e):
            return 2
        raise
    return 1
