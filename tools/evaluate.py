#!/usr/bin/env python
"""Evaluate segmentation weights on a dataset split and print the per-class table.

    python tools/evaluate.py [--config-file X] (--weights W [--runtime R] | --onnx F) [--precision P] [--slide]
        [--msc] [--flip] [--scales 0.5 0.75 ...] [--split val|test] [--out metrics.json] [--save-pred DIR] [KEY VALUE ...]

--weights runs the PyTorch model exactly as the trainer evaluates it (`--runtime torch`, the default), so the
metrics equal the trainer's for the same weights; `--runtime auto` takes the fastest correct runtime
(onnxruntime on a CPU when installed, exported once and checked against PyTorch; the fused model on CUDA);
`--runtime openvino` the checked export in OpenVINO. A lossy precision runs only when asked for: `--precision
int8` (the QDQ model, calibrated on --calib-images images of DATASET.TRAIN_SPLIT, cached), `bf16` or `int8+bf16`
(OpenVINO). --onnx evaluates an exported file (tools/export_onnx.py, INT8 too) with the same data, modes and
metrics; a file whose inputs, outputs or class count do not fit the config is an error. The metrics JSON
records the runtime and precision that ran.
W may be zoo:NAME (a published checkpoint, fetched into the segkit cache: python tools/zoo.py list) or an
official checkpoint file; without --config-file the config is the one W carries (a segkit checkpoint's, a
zoo entry's with its published protocol, or for --onnx the one tools/export_onnx.py saved in the file), and a
--config-file that builds another model than W is refused.

Flags left out fall back to TEST.SLIDE / TEST.MSC / TEST.FLIP; `--scales` implies --msc. The JSON
(metrics in percent, NaN as null, plus the inference mode) goes to --out, by default to
OUTPUT_DIR/metrics_eval.json (not metrics.json, which belongs to the training run). `--save-pred DIR`
writes DIR/labelIds/<name>_leftImg8bit.png (Cityscapes label ids, the benchmark server's format; point
cityscapesscripts at DIR/labelIds), DIR/color/ and DIR/overlay/. The test split has no labels: predictions
are saved and metrics skipped.

Another dataset than the model's (DATASET.NAME of another dataset; the model's is MODEL.TRAINED_ON, else the
checkpoint's config, else DATASET.NAME) is evaluated directly when both have the same classes (a Cityscapes
model on bdd100k, kitti, acdc, dark_zurich), through a declared class mapping (Mapillary <-> Cityscapes),
or refused with both class lists named; the report names both datasets. ACDC is reported per condition too.
Multi-process: `torchrun --nproc_per_node=N tools/evaluate.py ...`.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.data import build_dataset  # noqa: E402
from segkit.evaluation import InferenceMode, evaluate_dataset, format_metrics_table, save_metrics  # noqa: E402
from segkit.evaluation.cross_dataset import adapt_to_dataset, checkpoint_config  # noqa: E402
from segkit.evaluation.report import write_report_plots  # noqa: E402
from segkit.deploy import (DEFAULT_CALIB_IMAGES, PRECISIONS, RUNTIMES, ExportError, ParityError,  # noqa: E402
                           config_runtime, runtime_label)
from segkit.utils.cli import (SPLIT_KEYS, WEIGHTS_HELP, add_config_args, add_inference_args,  # noqa: E402
                              add_runtime_args, check_runtime_flags, dataset_split, parse_tool_args, run_tool)
from segkit.utils.comm import init_distributed, is_main_process, main_process_first  # noqa: E402
from segkit.utils.io import check_not_input, check_writable  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402
from segkit.zoo import load_model_for_inference, resolve_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, from_weights=True)
    weights = p.add_mutually_exclusive_group(required=True)
    weights.add_argument("--weights", help=WEIGHTS_HELP)
    weights.add_argument("--onnx", metavar="FILE", help="evaluate an exported file (tools/export_onnx.py) instead")
    add_runtime_args(p, RUNTIMES, PRECISIONS, DEFAULT_CALIB_IMAGES, default=None)
    add_inference_args(p)
    p.add_argument("--split", choices=tuple(SPLIT_KEYS), default="val",
                   help="DATASET.VAL_SPLIT or DATASET.TEST_SPLIT (no labels: predictions only)")
    p.add_argument("--out", default=None, help="metrics JSON path (default OUTPUT_DIR/metrics_eval.json)")
    p.add_argument("--save-pred", default=None, metavar="DIR", help="write label-id, colour and overlay PNGs here")
    args = parse_tool_args(p, argv)
    if args.onnx and args.runtime not in (None, "auto", "onnx", "openvino"):
        p.error(f"--runtime {args.runtime} applies to --weights; --onnx {args.onnx} runs in onnxruntime or openvino")
    args.runtime = args.runtime or ("auto" if args.onnx else "torch")  # --weights: the model's own number
    check_runtime_flags(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OSError: an image that passes the header check but does not decode (the message names it).
    # ExportError / ParityError: an export an explicit --runtime needs that fails or disagrees with the model.
    return run_tool(lambda: evaluate(args), extra_errors=(ExportError, ParityError, OSError))


def evaluate(args: argparse.Namespace) -> None:
    cfg = resolve_config(args.config_file, args.onnx or args.weights, args.opts)
    rank, _, device = init_distributed()
    # The inference settings first (TEST.* and the flags, TEST.AMP on this device): a bad value fails before
    # weights, data or export. The evaluation runs this very mode.
    mode = InferenceMode.from_config(cfg, slide=args.slide, msc=args.msc, flip=args.flip, scales=args.scales,
                                     device=device)
    # Outputs and inputs are checked before the evaluation, whose result would otherwise be lost.
    out = args.out or os.path.join(cfg.OUTPUT_DIR, "metrics_eval.json")
    out_flag = "--out" if args.out else "OUTPUT_DIR/metrics_eval.json"
    check_not_input(out, out_flag, args.onnx or args.weights, "--onnx" if args.onnx else "--weights")
    check_writable(out, out_flag)
    if args.save_pred:
        check_writable(args.save_pred, "--save-pred", folder=True)
    logger = setup_logger(cfg.OUTPUT_DIR, rank)
    split = dataset_split(cfg, args.split)
    model = None if args.onnx else load_model_for_inference(cfg, args.weights)

    def runner():
        return config_runtime(cfg, model, args.runtime, device=device, onnx_path=args.onnx, precision=args.precision,
                              calib_images=args.calib_images, int8_ops=args.int8_ops, threads=args.threads, mode=mode)

    # Cheap checks first: the weights or the ONNX file against the config, then the split; the export of
    # --weights to ONNX (runtime auto on a CPU) comes last.
    model_runner = runner() if args.onnx else None
    dataset = build_dataset(cfg, split, train=False)  # a demo config's set generates itself here
    if model_runner is None:
        # The main process exports (and caches) an ONNX runtime first; the others then load the cached file.
        model_runner = main_process_first(runner)
    # The runtime and precision that actually ran ("onnx fp32", "openvino int8+bf16"), not the flag.
    runtime, precision = runtime_label(model_runner).split(" ")
    # The model's classes against the dataset's: the same, mapped (either way), or an error naming both.
    model_runner, datasets = adapt_to_dataset(cfg, model_runner, dataset, checkpoint_config(args.weights))
    metrics = evaluate_dataset(model_runner, dataset, cfg, device, save_pred_dir=args.save_pred, mode=mode)
    if is_main_process():
        weights = args.onnx or args.weights
        metrics.update(weights=weights if weights.startswith("zoo:") else os.path.abspath(weights), split=split,
                       runtime=runtime, precision=precision, **datasets)
        if args.int8_ops:  # what the INT8 model quantized; absent: every operator type onnxruntime quantizes
            metrics["int8_ops"] = args.int8_ops
        if "mIoU" in metrics:
            logger.info("model trained on %s, evaluated on %s %s (%d images, mode %s):\n%s", datasets["trained_on"],
                        cfg.DATASET.NAME, split, metrics["num_images"], metrics["mode"], format_metrics_table(metrics))
        save_metrics(metrics, out)
        logger.info("wrote %s", ", ".join([out, *write_report_plots(metrics, out)]))


if __name__ == "__main__":
    sys.exit(main())
