#!/usr/bin/env python
"""Generate the procedural ImageFolder demo set: `python tools/make_demo_cls_data.py [--root datasets/demo_cls]`.

Ten classes of shapes and textures (circle, square, ..., dots) on noisy random colours; see segkit/pretrain/demo.py.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.pretrain import make_demo_cls_dataset  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="datasets/demo_cls", help="output folder (gets train/ and val/)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--train-per-class", type=int, default=60)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--size", type=int, default=72, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def make() -> None:
        make_demo_cls_dataset(args.root, args.num_classes, args.train_per_class, args.val_per_class, args.size, args.seed)
        print(f"wrote {args.root}/train and {args.root}/val")

    return run_tool(make, extra_errors=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
