#!/usr/bin/env python
"""Evaluate segmentation weights on a dataset split and print the per-class table.

    python tools/evaluate.py --config-file X (--weights W [--runtime R] | --onnx F) [--slide] [--msc] [--flip]
        [--scales 0.5 0.75 ...] [--split val|test] [--out metrics.json] [--save-pred DIR] [KEY VALUE ...]

--weights runs the PyTorch model exactly as the trainer evaluates it (`--runtime torch`, the default), so the
metrics equal the trainer's for the same weights; `--runtime auto` takes the fastest correct runtime
(onnxruntime on a CPU when installed, exported once and checked against PyTorch; the fused model on CUDA). --onnx evaluates an exported file (tools/export_onnx.py, INT8 too) with the same
data, modes and metrics; a file whose inputs, outputs or class count do not fit the config is an error.

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

from segkit.config import load_cfg  # noqa: E402
from segkit.data import build_dataset, check_num_classes  # noqa: E402
from segkit.evaluation import evaluate_dataset, format_metrics_table, save_metrics  # noqa: E402
from segkit.evaluation.report import write_report_plots  # noqa: E402
from segkit.deploy import RUNTIMES, build_runtime  # noqa: E402
from segkit.models import load_model_for_inference  # noqa: E402
from segkit.utils.cli import add_config_args, add_inference_args, parse_tool_args, run_tool  # noqa: E402
from segkit.utils.comm import init_distributed, is_main_process, main_process_first  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    weights = p.add_mutually_exclusive_group(required=True)
    weights.add_argument("--weights", help="checkpoint (model_final.pth, model_XXXXXXX.pth) or state_dict")
    weights.add_argument("--onnx", metavar="FILE", help="evaluate an exported file (tools/export_onnx.py) instead")
    p.add_argument("--runtime", default=None, choices=("auto", *RUNTIMES),
                   help="runtime of --weights: torch (default) runs the model exactly as the trainer evaluates it; "
                        "auto is the fastest correct one (onnxruntime on a CPU when installed)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    add_inference_args(p)
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="DATASET.VAL_SPLIT or DATASET.TEST_SPLIT (no labels: predictions only)")
    p.add_argument("--out", default=None, help="metrics JSON path (default OUTPUT_DIR/metrics_eval.json)")
    p.add_argument("--save-pred", default=None, metavar="DIR", help="write label-id, colour and overlay PNGs here")
    args = parse_tool_args(p, argv)
    if args.onnx and args.runtime not in (None, "auto", "onnx"):
        p.error(f"--runtime {args.runtime} applies to --weights; --onnx {args.onnx} always runs in onnxruntime")
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
    runtime = "onnx" if args.onnx else args.runtime or "torch"

    # Built first (a file that does not fit the config fails early); the main process exports and caches an
    # ONNX runtime, the others then load the cached file.
    model_runner = main_process_first(lambda: build_runtime(
        model, runtime, device=device, onnx_path=args.onnx, num_classes=cfg.MODEL.NUM_CLASSES, threads=args.threads))
    dataset = build_dataset(cfg, split, train=False)  # a demo config's set generates itself here
    check_num_classes(cfg, dataset)
    metrics = evaluate_dataset(model_runner, dataset, cfg, device, slide=args.slide, msc=args.msc, flip=args.flip,
                               scales=args.scales, save_pred_dir=args.save_pred)
    if is_main_process():
        metrics.update(weights=os.path.abspath(args.onnx or args.weights), split=split, runtime=runtime)
        if "mIoU" in metrics:
            logger.info("%s %s (%d images, mode %s):\n%s", cfg.DATASET.NAME, split, metrics["num_images"],
                        metrics["mode"], format_metrics_table(metrics))
        out = args.out or os.path.join(cfg.OUTPUT_DIR, "metrics_eval.json")
        save_metrics(metrics, out)
        logger.info("wrote %s", ", ".join([out, *write_report_plots(metrics, out)]))


if __name__ == "__main__":
    sys.exit(main())
