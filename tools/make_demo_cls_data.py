#!/usr/bin/env python
"""Generate the procedural ImageFolder demo set at DATASET.ROOT of a classification config.

    python tools/make_demo_cls_data.py  # exactly what configs/demo/pretrain_demo.yaml generates on first use
    python tools/make_demo_cls_data.py --root /tmp/demo_cls DATASET.DEMO_NUM_CLASSES 3 DATASET.DEMO_SIZE 32

Shapes and textures (circle, square, ..., dots) on noisy random colours, see segkit/pretrain/demo.py; the
sizes are the config's DATASET.DEMO_* keys and the seed its SEED, read as a training run reads them.
"""
from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout too

from segkit.config import get_cls_cfg, load_cfg  # noqa: E402
from segkit.pretrain.demo import demo_cls_exists, write_demo_cls_dataset  # noqa: E402
from segkit.utils.cli import parse_tool_args, run_tool  # noqa: E402
from segkit.utils.io import build_folder_once, replace_folder  # noqa: E402

# The default is the demo's own config: the set the demo trains on, at the ROOT it looks in, so running
# this tool first never leaves the demo a set of other sizes (it generates only when ROOT is missing).
DEMO_CONFIG = os.path.join(REPO, "configs", "demo", "pretrain_demo.yaml")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=DEMO_CONFIG,
                        help="classification config whose DATASET.ROOT / DEMO_* keys and SEED are used "
                             "(default: configs/demo/pretrain_demo.yaml)")
    parser.add_argument("--root", default="", help="output folder, gets train/ and val/ (default: DATASET.ROOT)")
    parser.add_argument("--force", action="store_true", help="replace an existing folder")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides")
    return parse_tool_args(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: make(args), extra_errors=(OSError,))


def make(args: argparse.Namespace) -> None:
    cfg = load_cfg(args.config_file, args.opts, defaults=get_cls_cfg)
    d = cfg.DATASET
    root = args.root or d.ROOT
    replace_folder(root, args.force, "--root")
    build_folder_once(root, lambda folder: write_demo_cls_dataset(cfg, folder), complete=demo_cls_exists)
    print(f"wrote {d.DEMO_NUM_CLASSES} classes x ({d.DEMO_TRAIN_PER_CLASS} train + {d.DEMO_VAL_PER_CLASS} val) "
          f"images of {d.DEMO_SIZE} px, seed {cfg.SEED}, to {root}/train and {root}/val")


if __name__ == "__main__":
    sys.exit(main())
