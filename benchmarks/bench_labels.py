#!/usr/bin/env python
"""The Predictor with the argmax inside the exported runtime against the same runtime returning logits.

    python benchmarks/bench_labels.py                                  # BiSeNetV1-R18, 512x1024, 2 threads
    python benchmarks/bench_labels.py --configs bisenetv2 pidnet_s --size 1024x2048

For one whole view at the input size, `segkit.evaluation.inference` takes the labels from the runtime's
`predict_labels` (ONNX Runtime: the file with an ArgMax appended; OpenVINO: a TopK appended), so the float
logits are neither copied out of the runtime nor reduced by PyTorch. Here each runtime's Predictor runs both
ways on the same rendered frame, interleaved round-robin: "inside" as segkit runs it, "logits" with the runtime
behind a wrapper that offers only its forward pass (the argmax then is `argmax_classes` in PyTorch). Before
timing, the label maps of the two are compared: the exact runtimes must agree on every pixel; a lossy one
prints the share of pixels whose class differs. Weights are random and seeded.
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from torch import nn  # noqa: E402

from segkit.config import load_cfg  # noqa: E402
from segkit.data import render_scene  # noqa: E402
from segkit.deploy import Predictor  # noqa: E402
from segkit.deploy.speed import CPU_VARIANTS, build_variant, rendered_calibration, variants  # noqa: E402
from segkit.models import build_model  # noqa: E402
from segkit.utils.analysis import measure_latency  # noqa: E402

from needs import runnable  # noqa: E402

EXPORTED = [v for v in CPU_VARIANTS if v.runtime in ("onnx", "openvino")]  # those with an argmax inside


class LogitsOnly(nn.Module):
    """A runtime seen through its forward pass only: inference() takes its logits and argmaxes them itself."""

    def __init__(self, runner: nn.Module) -> None:
        super().__init__()
        self.runner = runner
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["bisenetv1_r18"], help="names under configs/cityscapes")
    p.add_argument("--size", default="512x1024", help="HxW")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=9)
    names = [v.name for v in EXPORTED]
    p.add_argument("--runtimes", nargs="+", default=None, choices=names, metavar="RUNTIME",
                   help=f"variants of segkit.deploy.speed: {', '.join(names)} (default: those this machine offers)")
    args = p.parse_args(argv)
    # Checked before anything is built or timed: a runtime without its packages is named, never dropped.
    offered = {v.name for v in variants("cpu")}
    requested = [v for v in EXPORTED if v.name in args.runtimes] if args.runtimes else \
        [v for v in EXPORTED if v.name in offered]
    chosen, left_out = runnable(requested or EXPORTED)
    if not chosen:
        print(f"error: no runtime with an argmax inside can run here: {left_out}", file=sys.stderr)
        return 1
    if left_out:
        print(f"skipped {left_out}", file=sys.stderr)
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    frame, _ = render_scene(np.random.default_rng(1), h, w)
    rows = []
    for name in args.configs:
        cfg = load_cfg(os.path.join(ROOT, "configs", "cityscapes", f"{name}.yaml"),
                       ["MODEL.SYNC_BN", "False", "TEST.SCALE", 1.0, "TEST.MSC", False, "TEST.FLIP", False,
                        "TEST.SLIDE", False])
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        calibration = rendered_calibration((h, w), 8, cfg.INPUT.MEAN, cfg.INPUT.STD)
        timed, differ = {}, {}
        for v in chosen:
            runner = build_variant(model, v, torch.device("cpu"), args.threads, calibration, int(cfg.MODEL.NUM_CLASSES))
            inside, logits = Predictor(cfg, runner), Predictor(cfg, LogitsOnly(runner))
            a, b = inside(frame), logits(frame)
            if v.exact and not np.array_equal(a, b):
                raise SystemExit(f"{name} {v.title}: the labels from inside the runtime differ from the argmax of "
                                 f"its logits on {(a != b).mean():.2e} of the pixels")
            differ[v.name] = float((a != b).mean())
            timed[f"{v.name}|inside"] = lambda x, f=frame, pr=inside: pr(f)
            timed[f"{v.name}|logits"] = lambda x, f=frame, pr=logits: pr(f)
        measured = measure_latency(timed, (h, w), torch.device("cpu"), warmup=args.warmup, iters=args.iters)
        for v in chosen:
            ms_in, ms_out = measured[f"{v.name}|inside"]["median_ms"], measured[f"{v.name}|logits"]["median_ms"]
            rows.append([name, v.title, f"{ms_out:.1f}", f"{ms_in:.1f}", f"{ms_in / ms_out:.2f}",
                         f"{differ[v.name]:.1e}"])
    print(f"Predictor end to end, {h}x{w}, batch 1, {args.threads} threads; median ms of {args.iters} interleaved "
          f"repetitions after {args.warmup} warm-ups")
    print(tabulate(rows, headers=["config", "runtime", "argmax in PyTorch", "argmax in the runtime", "ratio",
                                  "pixels that differ"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
