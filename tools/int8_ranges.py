#!/usr/bin/env python
"""Before trusting INT8: how far each activation's range moves from one image to the next.

    python tools/int8_ranges.py [--config-file X] --weights W [--split test] [--images 30] [--top 12] [KEY VALUE ...]

Runs the model's parity-checked fp32 ONNX export on --images images of --split (default DATASET.TEST_SPLIT),
preprocessed as evaluation preprocesses them, and prints the --top tensors whose largest |value| changes most
between images (smallest / median / largest of the per-image maxima, and their ratio), then the logits.
Static INT8 gives each tensor the widest range the calibration images reach; where one image's activations
are tens of times smaller than another's, that image keeps few of the 256 levels and INT8 costs mIoU
(segkit.deploy.ranges; measure the cost with tools/evaluate.py --runtime auto --precision int8).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from tabulate import tabulate  # noqa: E402

from segkit.deploy import ExportError, ParityError, dataset_calibration  # noqa: E402
from segkit.deploy.fastpath import cached_onnx_export  # noqa: E402
from segkit.deploy.ranges import TensorSpread, activation_spread, widest_spreads  # noqa: E402
from segkit.deploy.runtime import OUTPUT_NAME  # noqa: E402
from segkit.utils.cli import WEIGHTS_HELP, add_config_args, parse_tool_args, run_tool  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402
from segkit.zoo import load_model_for_inference, resolve_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, from_weights=True)
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--split", default=None, help="the images to run (default: DATASET.TEST_SPLIT)")
    p.add_argument("--images", type=int, default=30, help="images, spread evenly over the split (default 30)")
    p.add_argument("--top", type=int, default=12, help="tensors of widest spread to print (default 12)")
    args = parse_tool_args(p, argv)
    for flag, value in (("--images", args.images), ("--top", args.top)):
        if value < 1:
            p.error(f"{flag} must be at least 1, got {value}")
    return args


def _row(s: TensorSpread) -> list[str]:
    m = s.maxima
    return [s.name, s.op_type, f"{m.min():.3g}", f"{np.median(m):.3g}", f"{m.max():.3g}", f"{s.spread:.1f}x"]


def report(args: argparse.Namespace) -> None:
    cfg = resolve_config(args.config_file, args.weights, args.opts)
    model = load_model_for_inference(cfg, args.weights)
    split = args.split or cfg.DATASET.TEST_SPLIT
    spreads = activation_spread(cached_onnx_export(model), dataset_calibration(cfg, args.images, split).inputs())
    headers = ["tensor", "written by", "smallest max", "median max", "largest max", "spread"]
    n = len(spreads[0].maxima)
    print(f"{len(spreads)} float tensors, {n} images of {cfg.DATASET.NAME} {split}; per image the largest |value|")
    print(tabulate([_row(s) for s in widest_spreads(spreads, args.top)], headers=headers))
    print("\nthe logits:")
    print(tabulate([_row(s) for s in spreads if s.name == OUTPUT_NAME], headers=headers))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger()
    return run_tool(lambda: report(args), extra_errors=(ExportError, ParityError, OSError))


if __name__ == "__main__":
    sys.exit(main())
