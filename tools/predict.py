#!/usr/bin/env python
"""Predict segmentation maps for images, folders, videos, a camera or a dataset split.

    python tools/predict.py [--config-file X] --weights W (--input PATH | --split val|test) [--out DIR]
        [--runtime auto|torch|fused|compile|onnx|openvino] [--precision fp32|bf16|int8|int8+bf16] [--threads N]
        [--slide] [--msc] [--flip] [--scales ...] [KEY VALUE ...]

--input is an image, a folder of images (not recursive), a video file (.mp4, .avi, ...) or a camera index
("0"). Images are written under --out (default OUTPUT_DIR/predictions) as trainIds/<stem>.png,
color/<stem>_color.png and overlay/<stem>_overlay.png at the input's size; files that are not images are
skipped with a log line, unreadable images are reported and skipped, and the run ends with a summary
(exit code 1 when an image was unreadable). A video or camera gives <out>/<stem>_overlay.mp4 with the
source's frame count and rate. The class names and palette come from the dataset the config names
(DATASET.NAME); its files are not needed. Everything runs through segkit.Predictor, so the files equal
what the Python API returns, pixel for pixel. --weights may be a .onnx file (tools/export_onnx.py), zoo:NAME
(python tools/zoo.py list) or an official checkpoint file; without --config-file the config is the one the
weights carry (an ONNX file the one tools/export_onnx.py saved in it).

--split runs on DATASET.VAL_SPLIT / TEST_SPLIT of any dataset and writes what `tools/evaluate.py
--save-pred` writes (Cityscapes: labelIds/ for the benchmark server); with torchrun the images are split
across processes. Inference flags as in tools/evaluate.py; --runtime auto is the fastest exact runtime
(onnxruntime on a CPU when it is installed); a lossy --precision runs only when asked for.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.data import build_dataset  # noqa: E402
from segkit.deploy import DEFAULT_CALIB_IMAGES, PRECISIONS, RUNTIMES, ExportError, ParityError, Predictor  # noqa: E402
from segkit.deploy.files import is_video, predict_files  # noqa: E402
from segkit.deploy.video import overlay_video  # noqa: E402
from segkit.evaluation import predict_dataset  # noqa: E402
from segkit.utils.cli import (SPLIT_KEYS, WEIGHTS_HELP, add_config_args, add_inference_args,  # noqa: E402
                              add_runtime_args, check_runtime_flags, dataset_split, parse_tool_args, run_tool)
from segkit.utils.comm import init_distributed, is_main_process, main_process_first  # noqa: E402
from segkit.utils.io import check_writable  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402
from segkit.zoo import resolve_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, from_weights=True)
    p.add_argument("--weights", required=True, help=f"{WEIGHTS_HELP}, or a .onnx file")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="an image, a folder of images, a video file or a camera index")
    source.add_argument("--split", choices=tuple(SPLIT_KEYS), help="DATASET.VAL_SPLIT or DATASET.TEST_SPLIT")
    p.add_argument("--out", default=None, help="output folder (default OUTPUT_DIR/predictions)")
    add_runtime_args(p, RUNTIMES, PRECISIONS, DEFAULT_CALIB_IMAGES)
    add_inference_args(p)
    args = parse_tool_args(p, argv)
    check_runtime_flags(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OSError: an input that cannot be opened or decoded (the message names it).
    # ExportError / ParityError: an export an explicit --runtime needs that fails or disagrees with the model.
    return run_tool(lambda: predict(args), extra_errors=(ExportError, ParityError, OSError))


def predict(args: argparse.Namespace) -> int:
    cfg = resolve_config(args.config_file, args.weights, args.opts)
    rank, _, device = init_distributed()
    logger = setup_logger(cfg.OUTPUT_DIR, rank)
    out = args.out or os.path.join(cfg.OUTPUT_DIR, "predictions")
    check_writable(out, "--out" if args.out else "OUTPUT_DIR/predictions", folder=True)  # before any inference
    if args.input and not args.input.isdigit() and not os.path.exists(args.input):
        raise FileNotFoundError(f"--input not found: {args.input}")
    dataset = None
    if args.split:
        # Before the model: a missing split fails at once.
        dataset = build_dataset(cfg, dataset_split(cfg, args.split), train=False)

    def make() -> Predictor:
        return Predictor.from_config(args.config_file, args.weights, device=device.type, runtime=args.runtime,
                                     opts=args.opts, precision=args.precision, calib_images=args.calib_images,
                                     int8_ops=args.int8_ops,
                                     threads=args.threads, slide=args.slide, msc=args.msc,
                                     flip=args.flip, scales=args.scales)

    # The main process exports (and caches) an ONNX runtime first; the others then load the cached file.
    predictor = main_process_first(make)
    if dataset is not None:
        predict_dataset(predictor.model, dataset, cfg, device, out,
                        slide=args.slide, msc=args.msc, flip=args.flip, scales=args.scales)
        return 0
    if not is_main_process():
        return 0  # files, videos and cameras are one process's work
    if is_video(args.input):
        stem = f"camera{args.input}" if args.input.isdigit() else os.path.splitext(os.path.basename(args.input))[0]
        path = os.path.join(out, f"{stem}_overlay.mp4")
        os.makedirs(out, exist_ok=True)
        count = overlay_video(predictor, args.input, path)
        logger.info("wrote %d frames to %s", count, path)
        return 0
    report = predict_files(predictor, args.input, out)
    logger.log(logging.WARNING if report.unreadable else logging.INFO, report.summary(out))
    return 1 if report.unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
