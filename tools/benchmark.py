#!/usr/bin/env python
"""Parameters, FLOPs and latency of the segmentor a config describes.

    python tools/benchmark.py --config-file configs/cityscapes/bisenetv1_r18.yaml --size 1024 2048
    python tools/benchmark.py --config-file X --device cuda --half --channels-last [--compile] [--json]
    python tools/benchmark.py --config-file X --size 512 1024 --compare     # eager vs channels_last vs fused

FLOPs and parameters are counted as segkit.utils.analysis documents (2 x multiply-adds of the eval model,
the published BiSeNet convention). Latency is the median over timed iterations after warm-up; `--compare`
interleaves the variants iteration by iteration so that the load of a shared machine hits every variant alike.
Trailing KEY VALUE pairs override the config.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

import torch  # noqa: E402

from segkit.config import load_cfg  # noqa: E402
from segkit.models import build_model  # noqa: E402
from segkit.models.fuse import prepare_for_inference  # noqa: E402
from segkit.utils.analysis import count_flops, count_params, measure_latency  # noqa: E402
from segkit.utils.cli import add_config_args, parse_tool_args, run_tool  # noqa: E402
from segkit.utils.comm import check_device  # noqa: E402
from segkit.zoo import backbone_label  # noqa: E402

# (channels_last, fuse) of each variant --compare times; "fused" is the runtime of that name (segkit.deploy):
# Conv+BN folded, channels_last.
VARIANTS = {"eager": (False, False), "channels_last": (True, False), "fused": (True, True)}
BN_FOLDED = "bn_folded"  # --fuse without --channels-last, which --compare leaves out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
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
    return parse_tool_args(p, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: benchmark(args))


def benchmark(args: argparse.Namespace) -> None:
    cfg = load_cfg(args.config_file, args.opts)
    device = check_device(args.device)  # no CUDA here: one line saying so
    if args.half and device.type != "cuda":
        raise ValueError("--half needs --device cuda (CPU fp16 convolutions are not a deployment target)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    size = (args.size[0], args.size[1])
    model = build_model(cfg).eval()

    result: dict = {"config": args.config_file, "model": cfg.MODEL.NAME, "backbone": backbone_label(cfg, model),
                    "size": list(size), "device": str(device), "threads": torch.get_num_threads()}
    result.update(count_params(model), gflops=count_flops(model, size) / 1e9)
    if args.iters > 0:
        if args.compare:
            variants = {v: prepare_for_inference(model, device, args.half, cl, fuse) for v, (cl, fuse) in VARIANTS.items()}
        else:
            flags = (args.channels_last, args.fuse)
            name = next((v for v, f in VARIANTS.items() if f == flags), BN_FOLDED)
            variants = {name: prepare_for_inference(model, device, args.half, args.channels_last, args.fuse)}
        if args.compile:
            variants = {f"{k}+compile": torch.compile(m) for k, m in variants.items()}
        result["half"] = args.half
        result["batch"] = args.batch
        result["latency"] = measure_latency(variants, size, device, args.half, args.warmup, args.iters, args.batch)

    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['model']} ({result['backbone']}) at {size[0]}x{size[1]} on {device}")
    print(f"  parameters: {result['params']:,} with auxiliary heads, {result['params_no_aux']:,} without")
    print(f"  FLOPs: {result['gflops']:.1f} G (2 x multiply-adds of convolutions/matmuls, eval model, batch 1)")
    for name, lat in result.get("latency", {}).items():
        print(f"  {name:24s} median {lat['median_ms']:9.2f} ms  min {lat['min_ms']:9.2f} ms  {lat['fps']:8.2f} FPS"
              f"  (batch {args.batch}, {'fp16' if args.half else 'fp32'}, {args.iters} timed after {args.warmup} warm-up)")


if __name__ == "__main__":
    sys.exit(main())
