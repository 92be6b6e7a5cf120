#!/usr/bin/env python
"""Parameters, FLOPs and latency of the segmentor a config describes.

    python tools/benchmark.py --config-file configs/cityscapes/bisenetv1_r18.yaml --size 1024 2048
    python tools/benchmark.py --config-file X --device cuda --half --channels-last [--compile] [--json]
    python tools/benchmark.py --config-file X --size 512 1024 --compare     # eager vs channels_last vs fused

FLOPs are 2 x multiply-adds of the convolutions and matmuls of the eval-mode model at batch 1
(torch.utils.flop_counter.FlopCounterMode), counted on the meta device, so even a CPU-only machine
counts a 1024x2048 input instantly. Norms, activations, pooling and interpolation are not counted;
that is the convention of the published BiSeNet figures (236.7 G for V1, 196.8 G for V2).
Latency is the median over timed iterations after warm-up; `--compare` interleaves the variants
iteration by iteration so that the load of a shared machine hits every variant alike.
Trailing KEY VALUE pairs override the config.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from segkit.config import ConfigError, load_cfg  # noqa: E402
from segkit.models import build_model  # noqa: E402
from segkit.models.fuse import fuse_conv_bn  # noqa: E402

VARIANTS = ("eager", "channels_last", "fuse", "fuse+channels_last")


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


def prepare(
    model: nn.Module, device: torch.device, half: bool = False, channels_last: bool = False, fuse: bool = False
) -> nn.Module:
    """An eval-mode copy of `model` on `device`, optionally BN-folded, in fp16 and/or channels_last."""
    m = fuse_conv_bn(model) if fuse else copy.deepcopy(model).eval()
    m = m.to(device)
    if half:
        m = m.half()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m


def _timer(model: nn.Module, x: torch.Tensor, device: torch.device) -> Callable[[], float]:
    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.inference_mode():
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) * 1000.0

    return run


def measure_latency(
    models: dict[str, nn.Module],
    size: tuple[int, int],
    device: torch.device,
    half: bool = False,
    warmup: int = 3,
    iters: int = 10,
    batch: int = 1,
) -> dict[str, dict[str, float]]:
    """Median / min latency (ms) and FPS of each prepared model, warm-ups first, timed runs interleaved."""
    dtype = torch.float16 if half else torch.float32
    timers = {}
    for name, m in models.items():
        x = torch.randn(batch, 3, *size, device=device, dtype=dtype)
        if "channels_last" in name:
            x = x.contiguous(memory_format=torch.channels_last)
        timers[name] = _timer(m, x, device)
    for run in timers.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(iters):
        for name, run in timers.items():
            times[name].append(run())
    return {
        name: {"median_ms": statistics.median(t), "min_ms": min(t), "fps": 1000.0 * batch / statistics.median(t)}
        for name, t in times.items()
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="segmentation config (YAML)")
    p.add_argument("--size", type=int, nargs=2, default=[1024, 2048], metavar=("H", "W"), help="input size")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--half", action="store_true", help="fp16 weights and input (CUDA only)")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument("--fuse", action="store_true", help="fold BatchNorm into the preceding convolutions")
    p.add_argument("--compile", action="store_true", help="torch.compile the model before timing")
    p.add_argument("--compare", action="store_true", help=f"time {', '.join(VARIANTS)} in the same run")
    p.add_argument("--batch", type=int, default=1, help="images per forward pass when timing")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations per variant")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per variant (0: no timing)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads on CPU (0: torch's default)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_cfg(args.config_file, args.opts)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    if args.half and device.type != "cuda":
        print("error: --half needs --device cuda (CPU fp16 convolutions are not a deployment target)", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    size = (args.size[0], args.size[1])
    model = build_model(cfg).eval()

    result: dict = {"config": args.config_file, "model": cfg.MODEL.NAME, "backbone": cfg.MODEL.BACKBONE.NAME if hasattr(model, "backbone") else "none",
                    "size": list(size), "device": str(device), "threads": torch.get_num_threads()}
    result.update(count_params(model))
    result["gflops"] = count_flops(model, size) / 1e9
    if args.iters > 0:
        if args.compare:
            variants = {v: prepare(model, device, args.half, "channels_last" in v, "fuse" in v) for v in VARIANTS}
        else:
            name = "+".join([n for n, on in (("fuse", args.fuse), ("channels_last", args.channels_last)) if on]) or "eager"
            variants = {name: prepare(model, device, args.half, args.channels_last, args.fuse)}
        if args.compile:
            variants = {f"{k}+compile": torch.compile(m) for k, m in variants.items()}
        result["half"] = args.half
        result["batch"] = args.batch
        result["latency"] = measure_latency(variants, size, device, args.half, args.warmup, args.iters, args.batch)

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']} ({result['backbone']}) at {size[0]}x{size[1]} on {device}")
    print(f"  parameters: {result['params']:,} with auxiliary heads, {result['params_no_aux']:,} without")
    print(f"  FLOPs: {result['gflops']:.1f} G (2 x multiply-adds of convolutions/matmuls, eval model, batch 1)")
    for name, lat in result.get("latency", {}).items():
        print(f"  {name:24s} median {lat['median_ms']:9.2f} ms  min {lat['min_ms']:9.2f} ms  {lat['fps']:8.2f} FPS"
              f"  (batch {args.batch}, {'fp16' if args.half else 'fp32'}, {args.iters} timed after {args.warmup} warm-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
