#!/usr/bin/env python
"""Draw a run's training curves: loss per head, learning rate and evaluation metrics over iterations.

    python tools/plot_log.py OUTPUT_DIR [--out curves.png]

Reads OUTPUT_DIR/events.jsonl (written by the segmentation trainer and the pretraining trainer) and
writes OUTPUT_DIR/curves.png unless --out says otherwise. Needs matplotlib: pip install -e ".[vis]".
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.utils.cli import run_tool  # noqa: E402
from segkit.utils.events import EVENTS_FILE, read_events  # noqa: E402
from segkit.utils.io import check_writable  # noqa: E402
from segkit.utils.plots import plot_training_curves  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output_dir", help="a run's OUTPUT_DIR")
    p.add_argument("--out", default=None, help="picture path (default OUTPUT_DIR/curves.png)")
    return p.parse_args(argv)


def plot(args: argparse.Namespace) -> None:
    path = os.path.join(args.output_dir, EVENTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: is {args.output_dir} the OUTPUT_DIR of a training run?")
    out = args.out or os.path.join(args.output_dir, "curves.png")
    check_writable(out, "--out" if args.out else "OUTPUT_DIR/curves.png")
    records = read_events(path)
    if not records:
        raise ValueError(f"{path} holds no events yet")
    out = plot_training_curves(records, out, title=os.path.basename(os.path.abspath(args.output_dir)))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: plot(args))


if __name__ == "__main__":
    sys.exit(main())
