#!/usr/bin/env python
"""Export a segmentor to ONNX, verified against PyTorch; optionally an INT8 model beside it.

    python tools/export_onnx.py [--config-file X] --weights W --out model.onnx [--opset 20]
        [--int8 [--calib-images 100] [--int8-out model_int8.onnx] [--int8-ops Conv]] [KEY VALUE ...]

The file takes "images" float [N,3,H,W] (normalised with INPUT.MEAN/STD, RGB) and returns "logits"
[N,C,H,W] at the input size, with dynamic N, H and W; Conv+BN are folded. Before the file is written,
onnxruntime runs it at two sizes other than the export size and must match PyTorch (max |logit diff|
<= 1e-3, argmax agreement >= 99.99%): otherwise the tool fails, naming the sizes and the differences.
A model that cannot be exported fails naming the module at fault.

W may be zoo:NAME or an official checkpoint file; without --config-file the config is the one W carries.

--int8 writes a statically quantized QDQ model (default: OUT with _int8 before .onnx), calibrated on
--calib-images images of DATASET.TRAIN_SPLIT preprocessed exactly as evaluation preprocesses them, and
logs its argmax agreement with the fp32 file on 4 training images calibration did not use.
--int8-ops Conv quantizes the convolutions only (slower; on OpenVINO more accurate for PIDNet-S, RESULTS.md).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.data import build_dataset  # noqa: E402
from segkit.deploy import (DEFAULT_CALIB_IMAGES, DEFAULT_OPSET, ExportError, ParityError,  # noqa: E402
                           calibration_inputs, export_onnx, quantize_int8)
from segkit.deploy.quantize import calibration_indices, held_out_indices, int8_agreement, model_inputs  # noqa: E402
from segkit.utils.cli import (INT8_OPS_HELP, WEIGHTS_HELP, add_config_args, int8_op_types, parse_tool_args,  # noqa: E402
                              run_tool)
from segkit.utils.io import check_not_input, check_writable  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402
from segkit.utils.onnx_meta import CONFIG_KEY  # noqa: E402
from segkit.zoo import load_model_for_inference, resolve_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, from_weights=True)
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--out", required=True, help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, 18 or newer (default {DEFAULT_OPSET})")
    p.add_argument("--int8", action="store_true", help="also write a statically quantized INT8 model")
    p.add_argument("--int8-out", default=None, help="INT8 file (default: --out with _int8 before the extension)")
    p.add_argument("--calib-images", type=int, default=None,
                   help=f"training images that calibrate INT8 (default {DEFAULT_CALIB_IMAGES})")
    p.add_argument("--int8-ops", type=int8_op_types, default=None, metavar="OP[,OP]", help=INT8_OPS_HELP)
    args = parse_tool_args(p, argv)
    given = [flag for flag, value in (("--int8-out", args.int8_out), ("--calib-images", args.calib_images),
                                      ("--int8-ops", args.int8_ops)) if value]
    if given and not args.int8:
        # Refused rather than ignored without a word.
        p.error(f"{' and '.join(given)} {'need' if len(given) > 1 else 'needs'} --int8")
    args.calib_images = args.calib_images or DEFAULT_CALIB_IMAGES
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OSError: an image OpenCV cannot decode during calibration (the message names it).
    return run_tool(lambda: export(args), extra_errors=(ExportError, ParityError, OSError))


def export(args: argparse.Namespace) -> None:
    int8_out = args.int8_out or f"{os.path.splitext(args.out)[0]}_int8.onnx"
    # No output may replace the weights it is made from, nor the INT8 file the fp32 one it is quantized from.
    check_not_input(args.out, "--out", args.weights, "--weights")
    if args.int8:
        check_not_input(int8_out, "--int8-out", args.weights, "--weights")
        check_not_input(int8_out, "--int8-out", args.out, "--out")
    cfg = resolve_config(args.config_file, args.weights, args.opts)
    logger = setup_logger()
    # Every output and the calibration data are checked before the export and its parity check.
    check_writable(args.out, "--out")
    dataset = None
    if args.int8:
        check_writable(int8_out, "--int8-out")
        dataset = build_dataset(cfg, cfg.DATASET.TRAIN_SPLIT, train=False)
    model = load_model_for_inference(cfg, args.weights).eval()
    # The file carries its config: it runs without --config-file, and a config given beside it is checked.
    export_onnx(model, args.out, opset=args.opset, num_classes=cfg.MODEL.NUM_CLASSES,
                metadata={CONFIG_KEY: cfg.dump()})  # logs the parity per size
    logger.info("wrote %s (opset %d)", args.out, args.opset)
    if dataset is not None:
        quantize_int8(args.out, int8_out, calibration_inputs(dataset, cfg, args.calib_images), op_types=args.int8_ops)
        # INT8 is lossy, so there is no bar; its agreement with fp32 says at once whether it is usable.
        held_out = held_out_indices(len(dataset), args.calib_images)
        which = "training images not used for calibration" if held_out else "calibration images (no other)"
        images = held_out or calibration_indices(len(dataset), 4)
        agreement, max_diff, _ = int8_agreement(args.out, int8_out, model_inputs(dataset, cfg, images))
        logger.info("INT8 against fp32 on %d %s (their views in the config's TEST mode): argmax agreement "
                    "%.2f%%, max |logit diff| %.3g", len(images), which, 100 * agreement, max_diff)

if __name__ == "__main__":
    sys.exit(main())
