#!/usr/bin/env python
"""The label map from full-size logits on the CPU: ways to take the argmax over the classes, side by side.

    python benchmarks/bench_argmax.py                       # 19 x 512 x 1024, 2 threads
    python benchmarks/bench_argmax.py --classes 11 --size 360x480

argmax_classes (segkit.evaluation.inference, what inference() uses) is checked against torch.argmax
before anything is timed; the variants' iterations are interleaved.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from segkit.evaluation.inference import argmax_classes  # noqa: E402


def running_max_argmax(scores: torch.Tensor) -> torch.Tensor:
    """The former argmax_classes: a running maximum with three operations per class (compare, max, stamp)."""
    best = scores[0].clone()
    labels = torch.zeros(best.shape, dtype=torch.uint8)
    better = torch.empty(best.shape, dtype=torch.bool)
    for c in range(1, scores.shape[0]):
        torch.gt(scores[c], best, out=better)
        torch.maximum(best, scores[c], out=best)
        labels.masked_fill_(better, c)
    return labels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=19)
    p.add_argument("--size", default="512x1024", help="HxW")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    scores = torch.randn(args.classes, h, w, generator=torch.Generator().manual_seed(0))
    variants = {
        "argmax(dim=0)": lambda: scores.argmax(0),
        "permute + argmax(dim=-1)": lambda: scores.permute(1, 2, 0).contiguous().argmax(-1),
        "numpy argmax(axis=0)": lambda: scores.numpy().argmax(0),
        "running max, 3 ops per class (uint8)": lambda: running_max_argmax(scores),
        "argmax_classes (uint8)": lambda: argmax_classes(scores, torch.uint8),
    }
    reference = scores.argmax(0)
    assert torch.equal(argmax_classes(scores).long(), reference), "argmax_classes disagrees with torch.argmax"
    assert torch.equal(running_max_argmax(scores).long(), reference), "the running maximum disagrees"
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(args.iters + 2):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            if i >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - t0)
    base = float(np.median(times["permute + argmax(dim=-1)"]))
    rows = [[k, f"{1000 * np.median(v):.1f}", f"{np.median(v) / base:.2f}"] for k, v in times.items()]
    print(f"{args.classes} x {h} x {w} float32, {args.threads} threads, median of {args.iters} interleaved iterations")
    print(tabulate(rows, headers=["variant", "median ms", "x permute+argmax"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
