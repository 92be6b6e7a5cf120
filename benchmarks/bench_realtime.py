#!/usr/bin/env python
"""CPU latency of the real-time models side by side: every config's deploy model, Conv+BN folded and in
channels_last, timed in one run with the iterations interleaved so the machine's load hits all alike.

    python benchmarks/bench_realtime.py --size 512 1024 --threads 2 --warmup 2 --iters 5
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from segkit.config import load_cfg  # noqa: E402
from segkit.models import build_model  # noqa: E402
from segkit.models.fuse import prepare_for_inference  # noqa: E402
from segkit.utils.analysis import count_flops, measure_latency  # noqa: E402

CONFIGS = ("bisenetv1_r18", "bisenetv2", "pidnet_s", "pidnet_m", "pidnet_l", "ddrnet_23_slim", "ddrnet_23",
           "ddrnet_39", "stdc1_seg50", "stdc2_seg50")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS))
    p.add_argument("--size", type=int, nargs=2, default=[512, 1024], metavar=("H", "W"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(args.size)
    models, flops = {}, {}
    for name in args.configs:
        model = build_model(load_cfg(os.path.join("configs", "cityscapes", f"{name}.yaml"))).eval()
        flops[name] = count_flops(model, size) / 1e9
        # "channels_last" in the key gives the timer a channels_last input (segkit.utils.analysis).
        models[f"{name} channels_last"] = prepare_for_inference(model, "cpu", channels_last=True, fuse=True)
    lat = measure_latency(models, size, torch.device("cpu"), warmup=args.warmup, iters=args.iters)
    rows = [[name, f"{flops[name]:.1f}", f"{lat[f'{name} channels_last']['median_ms']:.0f}",
             f"{lat[f'{name} channels_last']['fps']:.2f}"] for name in args.configs]
    print(f"CPU, {args.threads} threads, {size[0]}x{size[1]}, batch 1, fp32, fused + channels_last, "
          f"median of {args.iters} interleaved after {args.warmup} warm-up")
    print(tabulate(rows, headers=["config", f"GFLOPs at {size[0]}x{size[1]}", "median ms", "FPS"], tablefmt="github"))


if __name__ == "__main__":
    main()
