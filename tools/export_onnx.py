#!/usr/bin/env python
"""Export a segmentor to ONNX, verified against PyTorch; optionally an INT8 model beside it.

    python tools/export_onnx.py --config-file X --weights W --out model.onnx [--opset 20]
        [--int8 [--calib-images 100] [--int8-out model_int8.onnx]] [KEY VALUE ...]

The file takes "images" float [N,3,H,W] (normalised with INPUT.MEAN/STD, RGB) and returns "logits"
[N,C,H,W] at the input size, with dynamic N, H and W; Conv+BN are folded. Before the file is written,
onnxruntime runs it at two sizes other than the export size and must match PyTorch (max |logit diff|
<= 1e-3, argmax agreement >= 99.99%): otherwise the tool fails, naming the sizes and the differences.
A model that cannot be exported fails naming the module at fault.

--int8 writes a statically quantized QDQ model (default: OUT with _int8 before .onnx), calibrated on
--calib-images images of DATASET.TRAIN_SPLIT preprocessed exactly as evaluation preprocesses them.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout too

from segkit.config import load_cfg  # noqa: E402
from segkit.deploy import (DEFAULT_OPSET, ExportError, ParityError, dataset_calibration, export_onnx,  # noqa: E402
                           quantize_int8)
from segkit.models import load_model_for_inference  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="YAML config (may inherit with _BASE_)")
    p.add_argument("--weights", required=True, help="checkpoint (model_final.pth, ...) or state_dict")
    p.add_argument("--out", required=True, help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, 18 or newer (default {DEFAULT_OPSET})")
    p.add_argument("--int8", action="store_true", help="also write a statically quantized INT8 model")
    p.add_argument("--int8-out", default=None, help="INT8 file (default: --out with _int8 before the extension)")
    p.add_argument("--calib-images", type=int, default=100, help="training images that calibrate INT8")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OSError: an image OpenCV cannot decode during calibration (the message names it).
    return run_tool(lambda: export(args), extra_errors=(ExportError, ParityError, OSError))


def export(args: argparse.Namespace) -> None:
    cfg = load_cfg(args.config_file, list(args.opts))
    logger = setup_logger()
    model = load_model_for_inference(cfg, args.weights).eval()
    results = export_onnx(model, args.out, opset=args.opset, num_classes=cfg.MODEL.NUM_CLASSES)
    logger.info("wrote %s (opset %d), checked against PyTorch:\n  %s", args.out, args.opset,
                "\n  ".join(r.describe() for r in results))
    if args.int8:
        out = args.int8_out or f"{os.path.splitext(args.out)[0]}_int8.onnx"
        quantize_int8(args.out, out, dataset_calibration(cfg, args.calib_images).inputs())


if __name__ == "__main__":
    sys.exit(main())
