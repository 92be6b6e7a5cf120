#!/usr/bin/env python
"""Deployment speed on the CPU: every way to run BiSeNetV1 and BiSeNetV2, side by side, as a ratio to eager.

Per model and input size (batch 1, --threads for torch and onnxruntime alike):
    eager                  the model as trained
    fused                  Conv+BN folded, channels_last (the runtime of that name)
    compile                the fused model through torch.compile (compilation happens in the warm-up)
    onnx_fp32              the ONNX export (parity-checked against the model) in onnxruntime
    onnx_int8              that file statically quantized (QDQ), calibrated on --calib-images rendered
                           street scenes (segkit.data.render_scene: no dataset needed)
    predictor              segkit.Predictor end to end on a BGR uint8 frame: normalisation, the default
                           runtime, argmax and copy-out included (decoding a file excluded), whole image
    predictor_int8         the same Predictor on the INT8 file (what `Predictor.from_config(cfg, "x_int8.onnx")` runs)
The variants' timed iterations are interleaved (segkit.utils.analysis.measure_latency), so the load of a
shared machine hits each alike; every ratio is the variant's median over eager's median. Weights are
random: speed does not depend on them.

    python benchmarks/bench_deploy.py                                  # both models, 512x1024 and 1024x2048
    python benchmarks/bench_deploy.py --sizes 512x1024 --iters 20
    python benchmarks/bench_deploy.py --models bisenetv1 --sizes 64x128 --warmup 1 --iters 1   # smoke run
    python benchmarks/bench_deploy.py --models bisenetv1 --sizes 512x1024 --profile-onnx 4 --variants eager
        # also: share of the ONNX fp32 forward per operator type (onnxruntime's profiler, 4 runs)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from segkit.config import load_cfg  # noqa: E402
from segkit.data import render_scene  # noqa: E402
from segkit.deploy import (OnnxSegmentor, Predictor, build_runtime, default_runtime, export_onnx,  # noqa: E402
                           quantize_int8)
from segkit.models import build_model  # noqa: E402
from segkit.utils.analysis import measure_latency  # noqa: E402

CONFIGS = {
    "bisenetv1": os.path.join(ROOT, "configs", "cityscapes", "bisenetv1_r18.yaml"),
    "bisenetv2": os.path.join(ROOT, "configs", "cityscapes", "bisenetv2.yaml"),
}
VARIANTS = ("eager", "fused", "compile", "onnx_fp32", "onnx_int8", "predictor", "predictor_int8")


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def calibration(size: tuple[int, int], n: int, mean, std):
    """Normalised rendered street scenes [1,3,H,W] at the benchmark size."""
    from segkit.data.seg_transforms import normalise, normalise_luts

    luts = normalise_luts(mean, std)
    rng = np.random.default_rng(0)
    for _ in range(n):
        image, _ = render_scene(rng, *size)
        yield normalise(image, luts)[None]


def onnx_op_shares(path: str, size: tuple[int, int], runs: int, threads: int) -> list[list]:
    """[op type, ms per run, % of the kernel time] of the file's forward at `size`, from onnxruntime's profiler."""
    import json

    from segkit.deploy.runtime import INPUT_NAME, create_session

    session = create_session(path, threads, profile_prefix=os.path.join(os.path.dirname(path), "profile"))
    x = np.random.default_rng(0).standard_normal((1, 3, *size), dtype=np.float32)
    session.run(None, {INPUT_NAME: x})  # the warm-up run is profiled too: times are per run over all runs + 1
    for _ in range(runs):
        session.run(None, {INPUT_NAME: x})
    with open(session.end_profiling()) as f:
        events = [e for e in json.load(f) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_op: dict[str, float] = {}
    for e in events:
        per_op[e["args"]["op_name"]] = per_op.get(e["args"]["op_name"], 0.0) + e["dur"]
    total = sum(per_op.values())
    return [[op, f"{us / 1000 / (runs + 1):.1f}", f"{100 * us / total:.1f}"]
            for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])]


def bench_model(name: str, sizes: list[tuple[int, int]], args: argparse.Namespace, tmp: str) -> list[list]:
    # Whole image at scale 1, no flip: the Predictor predicts exactly the pixels the forward passes see.
    cfg = load_cfg(CONFIGS[name], ["MODEL.SYNC_BN", "False", "TEST.SCALE", "1.0", "TEST.MSC", "False",
                                   "TEST.FLIP", "False", "TEST.SLIDE", "False"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    fp32, int8 = os.path.join(tmp, f"{name}.onnx"), os.path.join(tmp, f"{name}_int8.onnx")
    export_onnx(model, fp32, num_classes=cfg.MODEL.NUM_CLASSES)
    if args.profile_onnx:
        print(f"{name} {sizes[0][0]}x{sizes[0][1]} ONNX fp32, kernel time by operator ({args.profile_onnx} runs + warm-up):")
        print(tabulate(onnx_op_shares(fp32, sizes[0], args.profile_onnx, args.threads)[:8],
                       headers=["operator", "ms per run", "% of kernel time"]))
    runners = {"eager": model}
    if "fused" in args.variants:
        runners["fused"] = build_runtime(model, "fused")
    if "compile" in args.variants:
        runners["compile"] = build_runtime(model, "compile")
    if "onnx_fp32" in args.variants:
        runners["onnx_fp32"] = OnnxSegmentor(fp32, threads=args.threads)
    if "onnx_int8" in args.variants or "predictor_int8" in args.variants:
        quantize_int8(fp32, int8, calibration(sizes[0], args.calib_images, cfg.INPUT.MEAN, cfg.INPUT.STD))
        if "onnx_int8" in args.variants:
            runners["onnx_int8"] = OnnxSegmentor(int8, threads=args.threads)
    # The Predictor's default runtime, on the file exported above rather than a second export.
    onnx_path = fp32 if default_runtime() == "onnx" else None
    predictor = Predictor(cfg, build_runtime(model, "auto", onnx_path=onnx_path, threads=args.threads))
    if "predictor_int8" in args.variants:
        predictor_int8 = Predictor(cfg, OnnxSegmentor(int8, threads=args.threads))
    rows = []
    for size in sizes:
        frame, _ = render_scene(np.random.default_rng(1), *size)
        variants = dict(runners)
        if "predictor" in args.variants:
            variants["predictor"] = lambda x, frame=frame: predictor(frame)
        if "predictor_int8" in args.variants:
            variants["predictor_int8"] = lambda x, frame=frame: predictor_int8(frame)
        result = measure_latency(variants, size, torch.device("cpu"), warmup=args.warmup, iters=args.iters)
        base = result["eager"]["median_ms"]
        for variant, r in result.items():
            rows.append([name, f"{size[0]}x{size[1]}", variant, f"{r['median_ms']:.1f}", f"{r['median_ms'] / base:.2f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--sizes", nargs="+", default=["512x1024", "1024x2048"], help="HxW input sizes")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                   help="what to time (eager is always timed: it is the reference)")
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--calib-images", type=int, default=8, help="rendered scenes that calibrate INT8")
    p.add_argument("--profile-onnx", type=int, default=0, metavar="RUNS",
                   help="also print the ONNX fp32 forward's kernel time by operator at the first size")
    args = p.parse_args(argv)
    args.variants = ["eager"] + [v for v in args.variants if v != "eager"]
    torch.set_num_threads(args.threads)
    sizes = [parse_size(s) for s in args.sizes]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += bench_model(name, sizes, args, tmp)
    print(f"CPU, batch 1, {args.threads} threads, median of {args.iters} interleaved iterations after "
          f"{args.warmup} warm-up; predictor runtime: {default_runtime()}")
    print(tabulate(rows, headers=["model", "size", "variant", "median ms", "x eager"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
