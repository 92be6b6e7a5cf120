#!/usr/bin/env python
"""Write the backbone-only state_dict of a classifier checkpoint: `python tools/export_backbone.py CKPT OUT [--ema]`.

CKPT is a pretraining checkpoint (model_XXXXXXX.pth, model_best.pth, model_final.pth) or a bare classifier
state_dict; OUT loads into build_backbone(name) and through MODEL.BACKBONE.WEIGHTS of a segmentation config.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.pretrain import export_backbone  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402
from segkit.utils.io import check_not_input, check_writable  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="classifier checkpoint or state_dict")
    parser.add_argument("out", help="where to write the backbone state_dict (.pth)")
    parser.add_argument("--ema", action="store_true", help="export the EMA weights instead of the raw model's")
    args = parser.parse_args(argv)

    def export() -> None:
        check_not_input(args.out, "OUT", args.checkpoint, "CKPT")
        check_writable(args.out, "OUT")
        state = export_backbone(args.checkpoint, args.out, use_ema=args.ema)
        print(f"wrote {args.out}: {len(state)} tensors ({'EMA' if args.ema else 'raw'} weights)")

    return run_tool(export, extra_errors=(RuntimeError,))  # RuntimeError: a file torch cannot load


if __name__ == "__main__":
    sys.exit(main())
