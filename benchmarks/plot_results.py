#!/usr/bin/env python
"""Latency against mIoU from a results JSON of benchmarks/bench_models.py: one point per model and runtime.

    python benchmarks/plot_results.py benchmarks/results/<machine>.json [--size 512x1024] [--timing predictor]

x: the median time of the runtime (log scale) at one input size; y: the model's published Cityscapes val
mIoU (segkit.zoo). Filled markers are exact runtimes, hollow ones lossy (bf16, INT8): their y is the
published fp32 figure, and the mIoU they lose is measured on CamVid (RESULTS.md). Models without a
published figure are left out. Writes the PNG beside the JSON unless --out names another file.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

MARKERS = "osD^v<>PXhp*dH8"  # one per runtime: 15, more than the CPU (11) or CUDA (6) variants and a reference


def matplotlib_missing() -> str | None:
    """None, or the line saying that drawing needs matplotlib and which extra brings it."""
    if importlib.util.find_spec("matplotlib") is not None:
        return None
    return 'matplotlib is not installed: pip install -e ".[vis]"'


def plot_results(results: dict, out: str, size: str | None = None, timing: str = "model") -> str | None:
    """Draw the picture to `out`; None (nothing written) when no model has both a time and a published mIoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = size or results["protocol"]["sizes"][0]
    runtimes = list(results["protocol"]["runtimes"])
    points = []
    for model, entry in results["models"].items():
        pub, lat = entry.get("published"), entry.get("latency", {}).get(size, {})
        for name, r in lat.items():
            t = r.get(timing)
            if pub and t:
                points.append((model, name, t["median_ms"], pub["miou"], r["exact"], r["title"]))
    if not points:
        return None
    models = sorted({p[0] for p in points})
    colours = plt.get_cmap("tab20")(range(len(models)))
    fig, ax = plt.subplots(figsize=(10, 6.5))
    for model, name, ms, miou, exact, title in points:
        colour = colours[models.index(model)]
        marker = MARKERS[runtimes.index(name) % len(MARKERS)]
        ax.scatter(ms, miou, s=46, marker=marker, color=colour if exact else "none", edgecolors=colour, linewidths=1.4)
    for model in models:  # the name beside the model's fastest exact point
        exact = [p for p in points if p[0] == model and p[4]] or [p for p in points if p[0] == model]
        best = min(exact, key=lambda p: p[2])
        ax.annotate(model, (best[2], best[3]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    for name in runtimes:
        title = next((p[5] for p in points if p[1] == name), None)
        if title:
            ax.scatter([], [], marker=MARKERS[runtimes.index(name) % len(MARKERS)], color="grey", label=title)
    ax.set_xscale("log")
    what = "forward pass" if timing == "model" else "Predictor end to end"
    cpu = results["machine"]["cpu"]
    ax.set_xlabel(f"{what}, batch 1, {size}: median ms (log scale)")
    ax.set_ylabel("published mIoU, Cityscapes val (%)")
    ax.set_title(f"{cpu['model']}, {results['machine']['threads']} threads ({results['machine']['name']}); "
                 "hollow: lossy runtime", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="JSON written by benchmarks/bench_models.py")
    p.add_argument("--size", default=None, help="HxW of the JSON to show (default: its first size)")
    p.add_argument("--timing", default="model", choices=("model", "predictor"))
    p.add_argument("--out", default=None, help="PNG path (default: the JSON's path with .png)")
    args = p.parse_args(argv)
    missing = matplotlib_missing()
    if missing:
        print(f"error: drawing the picture needs matplotlib; {missing}", file=sys.stderr)
        return 1
    with open(args.results) as f:
        results = json.load(f)
    if args.size and args.size not in results["protocol"]["sizes"]:
        p.error(f"size {args.size} is not in {args.results} (sizes {', '.join(results['protocol']['sizes'])})")
    out = plot_results(results, args.out or os.path.splitext(args.results)[0] + ".png", args.size, args.timing)
    if out is None:
        print(f"error: no model in {args.results} has both a time and a published mIoU", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
