#!/usr/bin/env python
"""Generate the procedural demo dataset (Cityscapes layout) at DATASET.ROOT.

    python tools/make_demo_data.py --config-file configs/demo/bisenetv1_demo.yaml
    python tools/make_demo_data.py --root datasets/demo DATASET.DEMO_NUM_TRAIN 200
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from segkit.config.loader import load_cfg  # noqa: E402
from segkit.data.demo import generate_demo_dataset  # noqa: E402
from segkit.utils.cli import parse_tool_args, run_tool  # noqa: E402
from segkit.utils.io import replace_folder  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", help="config whose DATASET.ROOT / DEMO_* keys are used")
    parser.add_argument("--root", default="", help="output folder (default: DATASET.ROOT)")
    parser.add_argument("--force", action="store_true", help="replace an existing folder")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides")
    return parse_tool_args(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: make(args))


def make(args: argparse.Namespace) -> None:
    cfg = load_cfg(args.config_file or None, args.opts)
    d = cfg.DATASET
    root = args.root or d.ROOT
    replace_folder(root, args.force, "--root")
    start = time.perf_counter()
    generate_demo_dataset(root, tuple(d.DEMO_SIZE), d.DEMO_NUM_TRAIN, d.DEMO_NUM_VAL, seed=cfg.SEED)
    print(f"wrote {d.DEMO_NUM_TRAIN} train + {d.DEMO_NUM_VAL} val images of {d.DEMO_SIZE[0]}x{d.DEMO_SIZE[1]} "
          f"to {root} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
