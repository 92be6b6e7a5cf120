#!/usr/bin/env python
"""Evaluate segmentation weights on a dataset split and print the per-class table.

    python tools/evaluate.py --config-file X (--weights W [--runtime R] | --onnx F) [--precision P] [--slide]
        [--msc] [--flip] [--scales 0.5 0.75 ...] [--split val|test] [--out metrics.json] [--save-pred DIR] [KEY VALUE ...]

--weights runs on the fastest exact runtime by default (onnxruntime on a CPU when installed, exported once
and checked against PyTorch; fused + channels_last on CUDA); `--runtime torch` runs the PyTorch model exactly
as the trainer evaluates it, `--runtime openvino` the checked export in OpenVINO. A lossy precision runs only
when asked for: `--precision int8` (the QDQ model, calibrated on --calib-images images of DATASET.TRAIN_SPLIT,
cached), `bf16` or `int8+bf16` (OpenVINO). --onnx evaluates an exported file (tools/export_onnx.py, INT8 too)
with the same data, modes and metrics; a file whose inputs, outputs or class count do not fit the config is an
error. The metrics JSON records the runtime and precision that ran.

Flags left out fall back to TEST.SLIDE / TEST.MSC / TEST.FLIP; `--scales` implies --msc. The JSON
(metrics in percent, NaN as null, plus the inference mode) goes to --out, by default to
OUTPUT_DIR/metrics_eval.json (not metrics.json, which belongs to the training run). `--save-pred DIR`
writes DIR/labelIds/<name>_leftImg8bit.png (Cityscapes label ids, the benchmark server's format; point
cityscapesscripts at DIR/labelIds), DIR/color/ and DIR/overlay/. The test split has no labels: predictions
are saved and metrics skipped. Multi-process: `torchrun --nproc_per_node=N tools/evaluate.py ...`.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.config import ConfigError, load_cfg  # noqa: E402
from segkit.data import build_dataset, ensure_demo_dataset  # noqa: E402
from segkit.evaluation import evaluate_dataset, format_metrics_table, save_metrics  # noqa: E402
from segkit.evaluation.report import write_report_plots  # noqa: E402
from segkit.deploy import PRECISIONS, RUNTIMES, build_runtime, dataset_calibration, runtime_label  # noqa: E402
from segkit.models import load_model_for_inference  # noqa: E402
from segkit.utils.cli import add_config_args, add_inference_args, add_runtime_args, parse_tool_args, run_tool  # noqa: E402
from segkit.utils.comm import barrier, init_distributed, is_main_process  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    weights = p.add_mutually_exclusive_group(required=True)
    weights.add_argument("--weights", help="checkpoint (model_final.pth, model_XXXXXXX.pth) or state_dict")
    weights.add_argument("--onnx", metavar="FILE", help="evaluate an exported file (tools/export_onnx.py) instead")
    add_runtime_args(p, RUNTIMES, PRECISIONS)
    add_inference_args(p)
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="DATASET.VAL_SPLIT or DATASET.TEST_SPLIT (no labels: predictions only)")
    p.add_argument("--out", default=None, help="metrics JSON path (default OUTPUT_DIR/metrics_eval.json)")
    p.add_argument("--save-pred", default=None, metavar="DIR", help="write label-id, colour and overlay PNGs here")
    args = parse_tool_args(p, argv)
    if args.onnx and args.runtime not in ("auto", "onnx", "openvino"):
        p.error(f"--runtime {args.runtime} applies to --weights; --onnx {args.onnx} runs in onnxruntime or openvino")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: evaluate(args))


def evaluate(args: argparse.Namespace) -> None:
    cfg = load_cfg(args.config_file, list(args.opts))
    rank, _, device = init_distributed()
    logger = setup_logger(cfg.OUTPUT_DIR, rank)
    split = cfg.DATASET.VAL_SPLIT if args.split == "val" else cfg.DATASET.TEST_SPLIT
    model = None if args.onnx else load_model_for_inference(cfg, args.weights)

    def runner():
        return build_runtime(model, args.runtime, device=device, onnx_path=args.onnx, precision=args.precision,
                             num_classes=cfg.MODEL.NUM_CLASSES, threads=args.threads,
                             calibration=dataset_calibration(cfg, args.calib_images))

    # The main process exports (and caches) an ONNX runtime first; the others then load the cached file.
    model_runner = runner() if is_main_process() else None
    barrier()
    model_runner = model_runner or runner()  # built first: a file that does not fit the config fails early
    if is_main_process():
        ensure_demo_dataset(cfg)  # a demo config evaluates without a prior training run; one writer
    barrier()
    dataset = build_dataset(cfg, split, train=False)
    if dataset.num_classes != cfg.MODEL.NUM_CLASSES:
        raise ConfigError(f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES} but dataset {cfg.DATASET.NAME} "
                          f"has {dataset.num_classes} classes")
    metrics = evaluate_dataset(model_runner, dataset, cfg, device, slide=args.slide, msc=args.msc, flip=args.flip,
                               scales=args.scales, save_pred_dir=args.save_pred)
    if is_main_process():
        # The runtime and precision that actually ran ("onnx fp32", "openvino int8+bf16"), not the flag.
        runtime, precision = runtime_label(model_runner).split(" ")
        metrics.update(weights=os.path.abspath(args.onnx or args.weights), split=split, runtime=runtime,
                       precision=precision)
        if "mIoU" in metrics:
            logger.info("%s %s (%d images, mode %s):\n%s", cfg.DATASET.NAME, split, metrics["num_images"],
                        metrics["mode"], format_metrics_table(metrics))
        out = args.out or os.path.join(cfg.OUTPUT_DIR, "metrics_eval.json")
        save_metrics(metrics, out)
        logger.info("wrote %s", ", ".join([out, *write_report_plots(metrics, out)]))


if __name__ == "__main__":
    sys.exit(main())
