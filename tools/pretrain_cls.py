#!/usr/bin/env python
"""Pretrain a zoo classifier on an ImageFolder set (ImageNet): `python tools/pretrain_cls.py --config-file X [KEY VALUE ...]`.

Multi-GPU: `torchrun --nproc_per_node=N tools/pretrain_cls.py --config-file X`. `--resume` continues from the
last checkpoint in OUTPUT_DIR; `--eval-only --weights W [--ema]` prints top-1 / top-5 of W (its EMA weights)
on the val set.
Writes under OUTPUT_DIR: log.txt, config.yaml, model_XXXXXXX.pth (the newest epoch), model_best.pth,
model_final.pth, metrics.json, events.jsonl (curves.png with matplotlib) and backbone_final.pth (backbone-only
state_dict for MODEL.BACKBONE.WEIGHTS of a segmentation config). SIGTERM, SIGUSR1 or Ctrl-C save the current
iteration and exit with code 75 (continue with --resume); under `torchrun --max-restarts N` a restarted worker group resumes by itself.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.config import ConfigError, get_cls_cfg, load_cfg  # noqa: E402
from segkit.pretrain import ClsTrainer, UnreadableImageError, evaluate_weights  # noqa: E402
from segkit.utils.cli import add_config_args, parse_tool_args, run_tool  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the newest readable checkpoint in OUTPUT_DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace the run OUTPUT_DIR holds (it is refused otherwise)")
    parser.add_argument("--eval-only", action="store_true", help="only evaluate --weights on the val set")
    parser.add_argument("--weights", default="", help="classifier checkpoint or state_dict for --eval-only")
    parser.add_argument("--ema", action="store_true", help="with --eval-only: evaluate the checkpoint's EMA weights")
    return parse_tool_args(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: pretrain(args), extra_errors=(UnreadableImageError,))


def pretrain(args: argparse.Namespace) -> None:
    if args.eval_only and not args.weights:
        raise ConfigError("--eval-only needs --weights W")
    if args.ema and not args.eval_only:
        raise ConfigError("--ema chooses the weights --eval-only evaluates; training keeps and evaluates its EMA "
                          "by EMA.ENABLED")
    cfg = load_cfg(args.config_file, args.opts, defaults=get_cls_cfg)
    if args.eval_only:
        m = evaluate_weights(cfg, args.weights, use_ema=args.ema)
        which = f"{args.weights} (EMA)" if args.ema else args.weights
        print(f"{which} on {m['count']} val images: top-1 {m['top1']:.2f}  top-5 {m['top5']:.2f}")
    else:
        ClsTrainer(cfg, resume=args.resume, overwrite=args.overwrite).train()


if __name__ == "__main__":
    sys.exit(main())
