"""Forward latency of segkit classifiers against the torchvision/timm model of the same architecture.

    python benchmarks/bench_backbones.py                      # default models, 1x3x512x1024 on CPU
    python benchmarks/bench_backbones.py --quick              # resnet18 only, fewer repetitions
    python benchmarks/bench_backbones.py --models resnet50 efficientnet_b0 --iters 5

Both sides are whole 1000-class classifiers (the pooling and fc cost nothing next to the body), and
segkit's gets the reference's converted weights where a converter exists, so the printed max logit
difference shows they compute the same function. Runs are interleaved (ref, segkit, ... per
repetition) and the median is reported, so load from other processes hits every variant alike.
ratio = segkit / reference (same memory format); CL = channels_last; fused = fuse_conv_bn copy.
With CUDA the same runs at batch 8 in fp16 (unless --device cpu).
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import statistics
import sys
from pathlib import Path
import torch
from tabulate import tabulate
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from segkit.models.classifier import create_classifier  # noqa: E402
from segkit.models.convert import available_conversions, convert_state_dict  # noqa: E402
from segkit.models.fuse import fuse_conv_bn  # noqa: E402
from segkit.utils.analysis import time_interleaved  # noqa: E402

DEFAULT_MODELS = ["resnet18", "resnet50", "resnet50d", "efficientnet_b0", "xception41"]
TORCHVISION = {f"resnet{d}" for d in (18, 34, 50, 101, 152)} | {f"efficientnet_b{i}" for i in range(8)}


def reference(name: str) -> tuple[str, nn.Module]:
    """The torchvision model of that name if torchvision has it, else timm's (`check_references` first)."""
    if name in TORCHVISION:
        import torchvision

        return "torchvision", getattr(torchvision.models, name)()
    import timm

    return "timm", timm.create_model(name)


def check_references(models: list[str]) -> list[str]:
    """The models whose reference is available, checked before anything is timed, so a missing timm or an unknown
    name cannot stop a run halfway. Without timm (the hub extra) its models are named and left out; a name no
    library has, or nothing left to time, ends the run.
    """
    needs_timm = [m for m in models if m not in TORCHVISION]
    if not needs_timm:
        return models
    if importlib.util.find_spec("timm") is None:
        line = f"{', '.join(needs_timm)}: the timm reference needs timm, not installed (pip install -e \".[hub]\")"
        kept = [m for m in models if m in TORCHVISION]
        if not kept:
            raise SystemExit(f"error: {line}")
        print(f"skipped {line}", file=sys.stderr, flush=True)
        return kept
    import timm

    unknown = [m for m in needs_timm if m not in timm.list_models(m)]
    if unknown:
        raise SystemExit(f"error: no torchvision or timm reference for {', '.join(repr(m) for m in unknown)}")
    return models


def bench_model(name: str, device: torch.device, batch: int, size: tuple[int, int], iters: int) -> dict:
    source, ref = reference(name)
    ref.eval()
    model = create_classifier(name).eval()
    converted = (source, name) in set(available_conversions())
    if converted:
        model.load_state_dict(convert_state_dict(source, name, ref.state_dict()))
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    x = torch.randn(batch, 3, *size, device=device, dtype=dtype)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def prepared(m: nn.Module, cl: bool) -> nn.Module:
        m = m.to(device=device, dtype=dtype)
        return m.to(memory_format=torch.channels_last) if cl else m

    variants = {
        "ref": (prepared(ref, False), x),
        "ref CL": (prepared(copy.deepcopy(ref), True), x_cl),
        "segkit": (prepared(model, False), x),
        "segkit CL": (prepared(copy.deepcopy(model), True), x_cl),
        "segkit fused CL": (prepared(fuse_conv_bn(model), True), x_cl),
    }
    with torch.inference_mode():
        diff = (variants["ref"][0](x).float() - variants["segkit"][0](x).float()).abs().max().item() if converted else None
        fns = {k: (lambda m=m, inp=inp: m(inp)) for k, (m, inp) in variants.items()}
        t = {k: statistics.median(v) for k, v in time_interleaved(fns, iters, 1, device).items()}
    ms = {k: v * 1000 for k, v in t.items()}
    return {
        "model": f"{name} ({source})",
        **{f"{k} ms": round(v, 1) for k, v in ms.items()},
        "ratio": round(ms["segkit"] / ms["ref"], 3),
        "ratio CL": round(ms["segkit CL"] / ms["ref CL"], 3),
        "fused CL / ref": round(ms["segkit fused CL"] / ms["ref"], 3),
        "max |dlogit|": "n/a" if diff is None else f"{diff:.1e}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help=f"default: {' '.join(DEFAULT_MODELS)}")
    parser.add_argument("--quick", action="store_true", help="resnet18 only (unless --models), 2 repetitions")
    parser.add_argument("--iters", type=int, default=None, help="timed repetitions per variant (default 3, quick 2)")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch", type=int, default=None, help="default 1 on CPU, 8 on CUDA")
    args = parser.parse_args(argv)
    models = check_references(args.models or (["resnet18"] if args.quick else DEFAULT_MODELS))
    iters = args.iters or (2 if args.quick else 3)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda given but CUDA is not available")
    device = torch.device("cuda" if use_cuda else "cpu")
    batch = args.batch or (8 if use_cuda else 1)
    load = os.getloadavg()
    print(
        f"device {device} ({torch.cuda.get_device_name() if use_cuda else f'{torch.get_num_threads()} threads'}), "
        f"input {batch}x3x{args.size[0]}x{args.size[1]} {'fp16' if use_cuda else 'fp32'}, "
        f"{iters} interleaved repetitions, median; load average {load[0]:.1f} on {os.cpu_count()} CPUs"
    )
    rows = []
    for name in models:
        rows.append(bench_model(name, device, batch, tuple(args.size), iters))
        print(tabulate([rows[-1]], headers="keys", tablefmt="github").splitlines()[-1], flush=True)
    print()
    print(tabulate(rows, headers="keys", tablefmt="github"))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
