#!/usr/bin/env python
"""Predict segmentation maps for images, or for a dataset split, and write colour maps and overlays.

    python tools/predict.py --config-file X --weights W (--input PATH | --split val|test) [--out DIR]
        [--slide] [--msc] [--flip] [--scales 0.5 0.75 ...] [KEY VALUE ...]

--input is one image or a folder of images (every file OpenCV can decode, not recursive); the class
names and palette come from the dataset the config names (DATASET.NAME), whose files need not exist.
Written under --out (default OUTPUT_DIR/predictions): trainIds/<stem>.png, color/<stem>_color.png and
overlay/<stem>_overlay.png, each at the input's size. --split runs on DATASET.VAL_SPLIT / TEST_SPLIT of
any dataset and writes what `tools/evaluate.py --save-pred` writes (Cityscapes: labelIds/ for the
benchmark server). Inference flags as in tools/evaluate.py: left out, they fall back to TEST.SLIDE /
TEST.MSC / TEST.FLIP; `--scales` implies --msc. Multi-process: `torchrun --nproc_per_node=N tools/predict.py ...`.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.config import load_cfg  # noqa: E402
from segkit.data import build_dataset, build_image_dataset, ensure_demo_dataset  # noqa: E402
from segkit.evaluation import predict_dataset  # noqa: E402
from segkit.models import load_model_for_inference  # noqa: E402
from segkit.utils.cli import add_config_args, add_inference_args, parse_tool_args, run_tool  # noqa: E402
from segkit.utils.comm import barrier, init_distributed, is_main_process  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--weights", required=True, help="checkpoint (model_final.pth, model_XXXXXXX.pth) or state_dict")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="an image file or a folder of images")
    source.add_argument("--split", choices=("val", "test"), help="DATASET.VAL_SPLIT or DATASET.TEST_SPLIT")
    p.add_argument("--out", default=None, help="output folder (default OUTPUT_DIR/predictions)")
    add_inference_args(p)
    return parse_tool_args(p, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OSError: an image file OpenCV cannot decode (the message names it).
    return run_tool(lambda: predict(args), extra_errors=(OSError,))


def predict(args: argparse.Namespace) -> None:
    cfg = load_cfg(args.config_file, list(args.opts))
    rank, _, device = init_distributed()
    setup_logger(cfg.OUTPUT_DIR, rank)
    if args.input is not None:
        dataset = build_image_dataset(cfg, args.input)
    else:
        split = cfg.DATASET.VAL_SPLIT if args.split == "val" else cfg.DATASET.TEST_SPLIT
        if is_main_process():
            ensure_demo_dataset(cfg)  # a demo config predicts without a prior training run; one writer
        barrier()
        dataset = build_dataset(cfg, split, train=False)
    model = load_model_for_inference(cfg, args.weights).to(device)
    out = args.out or os.path.join(cfg.OUTPUT_DIR, "predictions")
    predict_dataset(model, dataset, cfg, device, out, slide=args.slide, msc=args.msc, flip=args.flip,
                    scales=args.scales)


if __name__ == "__main__":
    sys.exit(main())
