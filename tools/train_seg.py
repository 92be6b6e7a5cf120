#!/usr/bin/env python
"""Train a segmentation model: `python tools/train_seg.py --config-file X [--resume] [KEY VALUE ...]`.

Fine-tune published or own weights: `--weights W` (zoo:NAME, a segkit checkpoint or an official file) sets
MODEL.WEIGHTS; without --config-file the run takes the config W carries. A config of another class count
(e.g. CamVid from a Cityscapes model) loads everything but the class layers, which start fresh (logged).

Multi-GPU (or multi-process CPU with gloo): `torchrun --nproc_per_node=N tools/train_seg.py ...`.
Everything is written under OUTPUT_DIR: log.txt, config.yaml, model_XXXXXXX.pth, model_final.pth, metrics.json,
events.jsonl (and tb/ with LOG.TENSORBOARD). An OUTPUT_DIR that holds a run is continued with --resume or
replaced with --overwrite; without either the start is refused and nothing is touched.

SIGTERM, SIGUSR1 or Ctrl-C save the current iteration and exit with code 75 (continue with --resume); under
`torchrun --max-restarts N` a restarted worker group resumes by itself.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.engine.seg_trainer import SegTrainer  # noqa: E402
from segkit.utils.cli import WEIGHTS_HELP, add_config_args, parse_tool_args, run_tool  # noqa: E402
from segkit.zoo import resolve_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, from_weights=True)
    parser.add_argument("--weights", default=None, help=f"start from {WEIGHTS_HELP} (sets MODEL.WEIGHTS)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest readable checkpoint in OUTPUT_DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace the run OUTPUT_DIR holds (it is refused otherwise)")
    return parse_tool_args(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OSError: an image that passes the header check at indexing but does not decode (the message names it).
    return run_tool(lambda: SegTrainer(run_config(args), resume=args.resume, overwrite=args.overwrite).train(),
                    extra_errors=(OSError,))


def run_config(args: argparse.Namespace):
    """--config-file (+ overrides), or the config --weights carry; --weights becomes MODEL.WEIGHTS."""
    if not args.weights:
        return resolve_config(args.config_file, None, args.opts)
    return resolve_config(args.config_file, args.weights, [*args.opts, "MODEL.WEIGHTS", args.weights], finetune=True)


if __name__ == "__main__":
    sys.exit(main())
