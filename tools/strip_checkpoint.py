#!/usr/bin/env python
"""Write a checkpoint's weights for sharing: `python tools/strip_checkpoint.py IN OUT [--ema]`.

A training checkpoint (model_final.pth, model_XXXXXXX.pth) also holds what only a resumed run needs --
optimizer moments, LR scheduler, grad scaler, EMA, history -- which more than doubles its size (107 MB for
BiSeNetV1 with SGD momentum). OUT keeps the weights and everything else, the config included, so
`--weights OUT` works in every tool as `--weights IN` did; it cannot be resumed from. `--ema` writes a
pretraining run's EMA weights as the model's.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.utils.checkpoint import strip_checkpoint  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402
from segkit.utils.io import check_not_input, check_writable  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a training checkpoint")
    p.add_argument("out", help="where to write the weights-only checkpoint")
    p.add_argument("--ema", action="store_true", help="write the EMA weights (pretraining) as the model's")
    return p.parse_args(argv)


def strip(args: argparse.Namespace) -> None:
    check_not_input(args.out, "OUT", args.checkpoint, "IN")
    check_writable(args.out, "OUT")
    kept = strip_checkpoint(args.checkpoint, args.out, use_ema=args.ema)
    before, after = os.path.getsize(args.checkpoint), os.path.getsize(args.out)
    print(f"wrote {args.out}: {after / 1e6:.1f} MB (from {before / 1e6:.1f} MB), entries {', '.join(sorted(kept))}"
          + ("" if "config" in kept else "; note: the checkpoint carries no config, pass --config-file with it"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: strip(args))


if __name__ == "__main__":
    sys.exit(main())
