#!/usr/bin/env python
"""Evaluator overhead and sliding-window memory on 2048x1024 inputs.

1. Overhead: one image with --msc --flip (TEST.SCALES, both flips): the evaluator's time per image
   (segkit.evaluation.inference + the metrics consumer's confusion matrix) against the time of the model's
   forward passes alone on the same views (same padded sizes, same batches), prepared beforehand. Target: <= 1.15x.
2. Memory of --slide --msc --flip at the default crop (1024x1024, stride 2/3) for several TEST.BATCH_SIZE
   values, and at a third of the crop as stride (about twice the windows) for one batch size. Each configuration
   runs in a fresh process. CUDA: torch.cuda.max_memory_allocated (tensor memory). CPU: the process's peak
   resident set (VmHWM) minus its resident set just before inference, i.e. everything inference made
   resident (tensors, allocator caches, the library's own buffers), measured by the kernel.

    python benchmarks/bench_eval.py                      # small conv model, CPU friendly
    python benchmarks/bench_eval.py --model bisenetv1    # the real model (slow on CPU)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from segkit.config import get_cfg  # noqa: E402
# The private helpers rebuild exactly the padded view batches the evaluator feeds the model.
from segkit.evaluation.inference import (  # noqa: E402
    InferenceMode, _chunks, _pad_to, _scaled_size, default_stride, inference, window_starts,
)
from segkit.evaluation.loop import SampleInfo  # noqa: E402
from segkit.evaluation.metrics import SegMetrics  # noqa: E402

NUM_CLASSES = 19


class SmallNet(nn.Module):
    """A few strided convolutions and a x8 upsampling: a cheap stand-in with a segmentor's output contract."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(64, num_classes, 1),
        )

    def forward(self, x):
        return F.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


def build(name: str, device: torch.device) -> nn.Module:
    if name == "small":
        model = SmallNet()
    else:
        from segkit.models import build_model

        cfg = get_cfg()
        cfg.MODEL.NAME = name
        model = build_model(cfg)
    return model.to(device).eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def overhead(args, device: torch.device) -> dict:
    model = build(args.model, device)
    h, w = args.size
    image = torch.randn(1, 3, h, w, device=device)
    label = torch.randint(0, NUM_CLASSES, (h, w), device=device)
    scales = args.scales
    # The forward passes the evaluator makes, as prepared inputs: per scale one batch of both flips.
    batches = []
    for s in scales:
        size = _scaled_size(h, w, s)
        x = image if size == (h, w) else F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        ph, pw = (math.ceil(v / 32) * 32 for v in size)
        views = torch.cat([_pad_to(x, ph, pw), _pad_to(x.flip(-1), ph, pw)])
        batches += [views[list(idx)] for idx in _chunks(2, args.batch_size)]

    def forwards():
        with torch.inference_mode():
            for b in batches:
                model(b)

    if args.metrics == "cityscapes":
        # The Cityscapes consumer: IoU plus iIoU and category metrics, over a ground truth with 60 instances.
        from segkit.data.categories import cityscapes_instance_spec
        from segkit.data.cityscapes import CLASS_NAMES
        from segkit.evaluation.instance_metrics import InstanceSegMetrics

        metrics = InstanceSegMetrics(CLASS_NAMES, 255, device, cityscapes_instance_spec(CLASS_NAMES))
        instances = torch.zeros(h, w, dtype=torch.int64, device=device)
        gen = torch.Generator().manual_seed(0)
        for k in range(60):
            label_id = [24, 25, 26, 27, 28, 31, 32, 33][k % 8]
            y, x = torch.randint(0, h - 64, (1,), generator=gen).item(), torch.randint(0, w - 64, (1,), generator=gen).item()
            instances[y:y + 64, x:x + 64] = label_id * 1000 + k
        info = SampleInfo("bench", "", {"instances": instances})
    else:
        metrics = SegMetrics([str(c) for c in range(NUM_CLASSES)], 255, device)  # the evaluation loop's consumer
        info = SampleInfo("bench", "")

    def evaluator():
        pred = inference(model, image, InferenceMode(scales=scales, flip=True, batch_size=args.batch_size),
                         out_size=(h, w), return_probs=False)
        metrics.process(pred, label, info)

    # Wall time, and on CPU also the process's CPU time, which a machine shared with other jobs
    # distorts less (both include every thread of this process).
    wall = {"forward": [], "evaluator": []}
    cpu = {"forward": [], "evaluator": []}
    for _ in range(args.warmup):
        for fn in (forwards, evaluator):
            fn()
    for _ in range(args.repeats):
        for key, fn in (("forward", forwards), ("evaluator", evaluator)):
            sync(device)
            t, c = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            wall[key].append(time.perf_counter() - t)
            cpu[key].append(time.process_time() - c)
    metrics.finish()  # the end-of-set step runs once per evaluation, not per image: exercised, not timed
    result = {"model": args.model, "metrics": args.metrics, "device": str(device), "size_hw": [h, w],
              "scales": scales, "flip": True,
              "views": 2 * len(scales), "batch_size": args.batch_size, "repeats": args.repeats}
    for name, d in (("wall", wall), ("cpu", cpu)):
        if name == "cpu" and device.type == "cuda":
            continue
        fwd, ev = min(d["forward"]), min(d["evaluator"])
        result.update({f"{name}_forward_s": round(fwd, 3), f"{name}_evaluator_s": round(ev, 3),
                       f"{name}_ratio": round(ev / fwd, 3)})
    return result


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(args, device: torch.device) -> dict:
    model = build(args.model, device)
    h, w = args.size
    image = torch.randn(1, 3, h, w, device=device)
    crop = (1024, 1024)
    stride = tuple(args.stride) if args.stride else default_stride(crop)
    windows = 0
    for s in args.scales:
        sh, sw = _scaled_size(h, w, s)
        windows += 2 * len(window_starts(max(sh, crop[0]), crop[0], stride[0])) * len(
            window_starts(max(sw, crop[1]), crop[1], stride[1]))
    mode = InferenceMode(scales=args.scales, flip=True, slide=True, crop_size=crop, stride=stride,
                         batch_size=args.batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        inference(model, image, mode, return_probs=False)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _rss_kb("VmRSS") * 1024
        inference(model, image, mode, return_probs=False)
        peak = _rss_kb("VmHWM") * 1024 - base
    kept = windows * NUM_CLASSES * crop[0] * crop[1] * 4
    return {"batch_size": args.batch_size, "stride": list(stride), "windows": windows,
            "peak_MiB": round(peak / 2**20, 1), "all_window_logits_MiB": round(kept / 2**20, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small", help="'small' (a few convolutions) or a MODEL.NAME")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, nargs=2, default=[1024, 2048], metavar=("H", "W"))
    p.add_argument("--scales", type=float, nargs="+", default=list(get_cfg().TEST.SCALES))
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8], help="memory part")
    p.add_argument("--metrics", default="cityscapes", choices=("cityscapes", "plain"),
                   help="the consumer timed: Cityscapes (IoU, iIoU, categories over an instance map) or IoU only")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each side first")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--stride", type=int, nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    device = torch.device(args.device)
    if args.memory_child:
        print(json.dumps(memory_child(args, device)))
        return
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    if not args.skip_overhead:
        r = overhead(args, device)
        print(f"overhead --msc --flip: {json.dumps(r)}")
        ratios = ", ".join(f"{k}: {v:.3f}x" for k, v in r.items() if k.endswith("_ratio"))
        print(f"  evaluator / forward alone: {ratios} (target <= 1.15x)")
    if not args.skip_memory:
        base = [sys.executable, os.path.abspath(__file__), "--memory-child", "--model", args.model,
                "--device", args.device, "--size", *map(str, args.size), "--scales", *map(str, args.scales)]
        configs = [["--batch-size", str(b)] for b in args.batch_sizes]
        configs.append(["--batch-size", str(args.batch_size), "--stride", "342", "342"])  # about twice the windows
        for extra in configs:
            out = subprocess.run(base + extra, check=True, capture_output=True, text=True).stdout
            print(f"memory --slide --msc --flip: {out.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
