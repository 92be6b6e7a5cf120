#!/usr/bin/env python
"""Which model, on which machine: every segmentor config, every runtime segkit offers, one protocol.

    python benchmarks/bench_models.py                      # every configs/cityscapes config, 512x1024 and 1024x2048
    python benchmarks/bench_models.py --configs bisenetv1_r18 bisenetv2 pidnet_s --page RESULTS.md
    python benchmarks/bench_models.py --configs bisenetv2 --sizes 128x256 --quick        # smoke run (2 reps)
    python benchmarks/bench_models.py --from-json benchmarks/results/<machine>.json --page RESULTS.md  # no timing
    python benchmarks/bench_models.py --facts-only --page RESULTS.md   # parameters, GFLOPs, published mIoU only
    COINCHEUNG_BISENET=/path/to/BiSeNet python benchmarks/bench_models.py --configs bisenetv1_r18 \
        --reference benchmarks/references/coincheung_bisenet.py     # another repository's model in the round-robin

For each config (batch 1, random seeded weights) and size it times every runtime this machine offers
(segkit.deploy.speed: eager, fused+channels_last, torch.compile, ONNX Runtime fp32/INT8, OpenVINO
fp32/bf16/INT8/INT8+bf16; on CUDA eager, fused, compile, fp16/bf16 autocast, ONNX Runtime CUDA), both the
forward pass alone and segkit.Predictor end to end, with all runtimes of one model interleaved
round-robin. Each time is printed beside the machine's compute limit for its precision
(GFLOPs / (cores x operations per cycle x clock), figures and sources in segkit.utils.machine).

Writes benchmarks/results/<machine>.json (the protocol, the machine, library versions and every timed run),
the picture benchmarks/results/<machine>.png (latency against published mIoU, benchmarks/plot_results.py)
and, with --page, the generated tables between the markers of that page. --reference FILE times another
implementation of the same network in the same round-robin (FILE defines TITLE and MODELS, a dictionary from
config name to a function returning the eval-mode nn.Module; benchmarks/references/ has one) and prints
segkit's eager forward pass, the default Predictor and the fastest exact and lossy Predictors as ratios of
that forward pass. The JSON is written after each
model, so an interrupted run keeps what it measured; --merge keeps the other configs and sizes of an existing file.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import importlib.util
import json
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from segkit.config import load_cfg  # noqa: E402
from segkit.deploy.speed import CPU_VARIANTS, CUDA_VARIANTS, model_facts, time_model, variants  # noqa: E402
from segkit.models import build_model  # noqa: E402
from segkit.utils.machine import compute_limits, library_versions, limit_ms, machine_name, read_cpu_info  # noqa: E402
from segkit.utils.logger import setup_logger  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from needs import runnable  # noqa: E402
from plot_results import matplotlib_missing, plot_results  # noqa: E402

CONFIG_DIR = os.path.join(ROOT, "configs", "cityscapes")
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
BEGIN, END = "<!-- bench_models:begin -->", "<!-- bench_models:end -->"
REFERENCE = "reference"  # the runtime key of a --reference implementation
LIMITS_NOTE = "the nominal compute limit of its precision"
INTERLEAVING = ("all warm-ups first (torch.compile compiles there); then each timed repetition runs every runtime of "
                "the model once, forward pass and Predictor, in a fixed round-robin order")
TIMED = {"model": "the runtime's forward pass on a normalised float [1,3,H,W] tensor (logits out)",
         "predictor": "segkit.Predictor end to end on a BGR uint8 frame: normalisation, forward, argmax (inside the "
                      "runtime for ONNX Runtime and OpenVINO), uint8 map copied out; whole image at scale 1, file "
                      "decoding excluded"}


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r} is not HxW (e.g. 512x1024)")
    return int(match.group(1)), int(match.group(2))


def config_path(name: str) -> str:
    """A config name of configs/cityscapes (bisenetv1_r18) or a path to any config file."""
    path = name if name.endswith(".yaml") else os.path.join(CONFIG_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        known = ", ".join(sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(CONFIG_DIR, "*.yaml"))))
        raise SystemExit(f"error: config {name!r} not found ({path}); known: {known}")
    return path


def published_miou(path: str) -> dict | None:
    """The zoo's published figure for the config (segkit.zoo.entries), or None where the zoo has none."""
    try:
        from segkit.zoo.entries import ENTRIES
    except ImportError:
        return None
    rel = os.path.relpath(os.path.abspath(path), os.path.join(ROOT, "configs")).replace(os.sep, "/")
    for entry in ENTRIES.values():
        # An entry whose overrides change the model (MODEL.VARIANT ...) publishes another model's figure.
        # The CoinCheung entries run the same model with that repository's normalisation (*_coincheung.yaml).
        same_model = entry.config == rel or entry.config.replace("_coincheung.yaml", ".yaml") == rel
        if same_model and entry.miou is not None and not any(str(k).startswith("MODEL.") for k in entry.opts[::2]):
            return {"miou": entry.miou, "zoo": entry.name, "protocol": entry.protocol}
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=None,
                   help="config names of configs/cityscapes or paths (default: every configs/cityscapes/*.yaml)")
    p.add_argument("--sizes", nargs="+", type=parse_size, default=[(512, 1024), (1024, 2048)], help="HxW sizes")
    names = sorted({v.name for v in CPU_VARIANTS + CUDA_VARIANTS})
    p.add_argument("--runtimes", nargs="+", default=None, choices=names, metavar="RUNTIME",
                   help=f"variants to time (default: all this machine offers): {', '.join(names)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None,
                   help="torch, onnxruntime and OpenVINO threads (default: every core this process may use)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per runtime and timing")
    p.add_argument("--iters", type=int, default=10, help="timed round-robin repetitions")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 warm-up, 2 repetitions (figures not for quoting)")
    p.add_argument("--no-predictor", action="store_true", help="time the forward passes only")
    p.add_argument("--calib-images", type=int, default=8, help="rendered scenes that calibrate INT8")
    p.add_argument("--clock-ghz", type=float, default=None, help="clock for the compute limits (default: read)")
    p.add_argument("--out", default=None, help="results JSON (default benchmarks/results/<machine>.json)")
    p.add_argument("--merge", action="store_true", help="keep the other configs and sizes of an existing --out file")
    p.add_argument("--page", default=None, help="markdown page whose generated block to rewrite (RESULTS.md)")
    p.add_argument("--plot-size", type=parse_size, default=None, help="size the picture shows (default: the first)")
    p.add_argument("--from-json", default=None, metavar="FILE", help="print, plot and write the page from FILE only")
    p.add_argument("--reference", default=None, metavar="FILE",
                   help="a Python file with TITLE and MODELS {config name: builder}: time that implementation too")
    p.add_argument("--facts-only", action="store_true",
                   help="count parameters and GFLOPs only (no timing, nothing written but --page)")
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.iters = 1, 2
    return args


def machine(args: argparse.Namespace) -> dict:
    cpu = read_cpu_info()
    if args.clock_ghz:
        cpu = dataclasses.replace(cpu, clock_ghz=args.clock_ghz, clock_source="--clock-ghz")
    threads = args.threads or cpu.cores
    info = {"name": machine_name(cpu), "cpu": dataclasses.asdict(cpu), "threads": threads, "device": args.device,
            "limits": compute_limits(cpu, threads) if args.device == "cpu" else {},
            "versions": library_versions()}
    if args.device == "cuda":
        gpu = torch.cuda.get_device_name(0)
        info.update(gpu=gpu, name=re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-"))
    return info


def protocol(args: argparse.Namespace, chosen) -> dict:
    return {"batch": 1, "sizes": [f"{h}x{w}" for h, w in args.sizes], "threads": args.threads,
            "warmup": args.warmup, "iters": args.iters, "statistic": "median of the timed repetitions",
            "interleaving": INTERLEAVING, "timed": TIMED if not args.no_predictor else {"model": TIMED["model"]},
            "runtimes": {v.name: v.title for v in chosen}, "weights": "random, seeded (speed does not depend on them)",
            "int8_calibration": f"{args.calib_images} rendered street scenes at the first size, normalised",
            "quick": args.quick}


def load_references(path: str | None) -> tuple[str, dict]:
    """(TITLE, MODELS) of a --reference file; a file without them is an error naming it."""
    if path is None:
        return "", {}
    if not os.path.isfile(path):
        raise SystemExit(f"error: --reference {path}: no such file")
    spec = importlib.util.spec_from_file_location("segkit_bench_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    title, models = getattr(module, "TITLE", None), getattr(module, "MODELS", None)
    if not isinstance(title, str) or not isinstance(models, dict):
        raise SystemExit(f"error: --reference {path} must define TITLE (a string) and MODELS "
                         "(a dictionary from config name to a function returning an nn.Module)")
    return title, models


def measure(args: argparse.Namespace) -> dict:
    ref_title, ref_models = load_references(args.reference)
    info = machine(args)
    args.threads = info["threads"]
    torch.set_num_threads(args.threads)
    chosen = tuple(runnable_variants(args))
    skipped = sorted(set(args.runtimes or ()) - {v.name for v in chosen})
    out = args.out or os.path.join(RESULTS_DIR, f"{info['name']}.json")
    results = {"machine": info, "protocol": protocol(args, chosen), "command": " ".join(["python", *sys.argv]),
               "skipped_runtimes": skipped, "models": {}}
    if args.merge and os.path.isfile(out):
        with open(out) as f:
            old = json.load(f)
        results["models"] = old.get("models", {})
        # The tables cover every size and runtime of the file: the earlier run's first, then this run's.
        proto, before = results["protocol"], old.get("protocol", {})
        proto["sizes"] = list(dict.fromkeys(before.get("sizes", []) + proto["sizes"]))
        proto["runtimes"] = {**before.get("runtimes", {}), **proto["runtimes"]}
        if "reference" in before:
            proto["reference"] = before["reference"]
    paths = [config_path(c) for c in args.configs] if args.configs else sorted(glob.glob(os.path.join(CONFIG_DIR, "*.yaml")))
    if args.facts_only:
        results["protocol"]["runtimes"] = {}
    else:
        if ref_models:
            results["protocol"]["runtimes"] = {REFERENCE: ref_title, **results["protocol"]["runtimes"]}
            results["protocol"]["reference"] = {"title": ref_title, "file": os.path.relpath(args.reference, ROOT),
                                                "timed": "its forward pass, eval mode, in the same round-robin"}
        print_protocol(results)
    for path in paths:
        name = os.path.basename(path)[:-5]
        start = time.perf_counter()
        cfg = load_cfg(path, ["MODEL.SYNC_BN", "False"])
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        if args.facts_only:
            entry = model_facts(model, list(args.sizes))
        else:
            refs = {REFERENCE: (ref_title, ref_models[name]().to(args.device))} if name in ref_models else None
            entry = time_model(cfg, model, list(args.sizes), chosen, info["limits"], device=args.device,
                               threads=args.threads, warmup=args.warmup, iters=args.iters,
                               calib_images=args.calib_images, predictor=not args.no_predictor, references=refs)
        entry.update(config=os.path.relpath(path, ROOT), model=cfg.MODEL.NAME, published=published_miou(path),
                     wall_s=round(time.perf_counter() - start, 1))
        if args.merge and name in results["models"]:
            # Sizes measured earlier (another --sizes run) stay beside this run's: one model, one entry.
            earlier = results["models"][name]
            for key in ("gflops", "latency", "gemm_probe"):
                entry[key] = {**earlier.get(key, {}), **entry.get(key, {})}
            entry["errors"] = {**earlier.get("errors", {}), **entry.get("errors", {})} \
                if isinstance(entry.get("errors"), dict) else entry.get("errors")
        results["models"][name] = entry
        if not args.facts_only:
            save(results, out)
            print(f"{name}: {entry['wall_s']} s (written to {out})", flush=True)
    results["out"] = out
    return results


def runnable_variants(args: argparse.Namespace) -> list:
    """The variants to time: those of --runtimes (default: all this machine offers) whose packages are installed.

    Checked before anything is timed; the others are named with what they lack, and a run that could time
    none of them is an error, not an empty table with exit 0.
    """
    if args.facts_only:  # nothing is timed
        return [v for v in variants(args.device) if args.runtimes is None or v.name in args.runtimes]
    every = CUDA_VARIANTS if torch.device(args.device).type == "cuda" else CPU_VARIANTS
    if args.runtimes is None:
        requested = list(variants(args.device))
    else:  # in the device's order, as before; a name of the other device only is named as such
        requested = [v for v in every if v.name in args.runtimes]
        names = {v.name for v in requested}
        for v in (*CPU_VARIANTS, *CUDA_VARIANTS):
            if v.name in args.runtimes and v.name not in names:
                requested.append(v)
                names.add(v.name)
    chosen, left_out = runnable(requested, args.device)
    if not chosen:
        raise SystemExit(f"error: none of the runtimes asked for can run here: {left_out}")
    if left_out:
        print(f"skipped {left_out}", file=sys.stderr, flush=True)
    return chosen


def save(results: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, path)


def print_protocol(results: dict) -> None:
    m, p = results["machine"], results["protocol"]
    cpu = m["cpu"]
    print(f"machine: {m['name']}: {cpu['model']}, {cpu['cores']} cores, clock {cpu['clock_ghz']} GHz "
          f"({cpu['clock_source']}), flags {' '.join(cpu['flags']) or 'none'}" + (f", GPU {m['gpu']}" if "gpu" in m else ""))
    for precision, lim in m["limits"].items():
        print(f"  {precision} limit: {lim['unit']}, {lim['ops_per_cycle']} ops/cycle/core x {lim['cores']} cores"
              + (f" = {lim['gops']:.0f} GOPS" if "gops" in lim else "") + f" ({lim['source']})")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v))
    print(f"protocol: batch 1, {p['threads']} threads, {p['warmup']} warm-up(s), median of {p['iters']} repetitions; "
          f"{p['interleaving']}")
    for what, text in p["timed"].items():
        print(f"  timed '{what}': {text}")
    print(f"  INT8 calibration: {p['int8_calibration']}; weights {p['weights']}")
    print(f"  limits: {LIMITS_NOTE}")
    if p.get("reference"):
        print(f"  reference: {p['reference']['title']} ({p['reference']['file']}): {p['reference']['timed']}")
    if results.get("skipped_runtimes"):
        print(f"  not offered on this machine: {', '.join(results['skipped_runtimes'])}")


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def speed_rows(results: dict, size: str, timing: str = "model") -> tuple[list[str], list[list[str]]]:
    """One row per model: its time per runtime ("ms (x limit)") at `size`."""
    names = list(results["protocol"]["runtimes"])
    titles = results["protocol"]["runtimes"]
    rows = []
    for model, entry in results["models"].items():
        lat = entry.get("latency", {}).get(size)
        if not lat:
            continue
        row = [model]
        for n in names:
            r = lat.get(n)
            t = r and r.get(timing)
            if not t:
                row.append("—" if n in entry.get("errors", {}) else "")
                continue
            ratio = f" ({t['median_ms'] / r['limit_ms']:.1f}x)" if r.get("limit_ms") else ""
            row.append(_ms(t["median_ms"]) + ratio)
        rows.append(row)
    return ["config", *[titles[n] for n in names]], rows


def _fastest_predictor(rows: list[dict], exact: bool) -> dict | None:
    timed = [r for r in rows if r["exact"] == exact and r.get("predictor")]
    return min(timed, key=lambda r: r["predictor"]["median_ms"]) if timed else None


def _default_row(entry: dict, lat: dict) -> dict | None:
    """The row of the runtime a plain Predictor runs on this machine (exact, `auto`)."""
    return next((r for k, r in lat.items()
                 if k != REFERENCE and r["runtime"] == entry.get("default_runtime") and r["exact"]), None)


def default_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Per model and size: the default Predictor against the fp32 limit, nominal and at the rate the fp32 GEMM
    probe reached in the same run. The second ratio stays comparable on a virtual machine whose speed drifts
    from day to day: it asks how far the model is from what the machine delivered to dense arithmetic then."""
    fp32 = results["machine"]["limits"].get("fp32")
    headers = ["config", "size", "default runtime", "Predictor ms", "fp32 limit ms (nominal)", "x nominal",
               "GEMM GFLOP/s in the run", "fp32 limit ms at that rate", "x that rate"]
    rows = []
    for model, entry in results["models"].items():
        for size in results["protocol"]["sizes"]:
            lat = entry.get("latency", {}).get(size, {})
            default = _default_row(entry, lat)
            t = default and default.get("predictor")
            gflops, probe = entry["gflops"].get(size), entry.get("gemm_probe", {}).get(size)
            if not t or gflops is None:
                continue
            nominal = fp32 and limit_ms(gflops, fp32)
            at_rate = probe and 1000.0 * gflops / probe["gflops_per_s"]
            ms = t["median_ms"]
            rows.append([model, size, default["title"], _ms(ms), _ms(nominal), f"{ms / nominal:.2f}" if nominal else "",
                         f"{probe['gflops_per_s']:.0f}" if probe else "", _ms(at_rate),
                         f"{ms / at_rate:.2f}" if at_rate else ""])
    return headers, rows


def reference_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Per model and size with a --reference timing: segkit's forward and Predictor times as ratios of it."""
    title = results["protocol"].get("reference", {}).get("title", REFERENCE)
    headers = ["config", "size", f"{title} forward ms", "segkit eager forward", "segkit default Predictor",
               "fastest exact Predictor", "fastest lossy Predictor"]
    rows = []
    for model, entry in results["models"].items():
        for size, lat in entry.get("latency", {}).items():
            ref = (lat.get(REFERENCE) or {}).get("model")
            if not ref:
                continue
            base = ref["median_ms"]

            def cell(row: dict | None, timing: str, label: bool = False) -> str:
                t = row and row.get(timing)
                if not t:
                    return ""
                return (f"{row['title']}: " if label else "") + f"{_ms(t['median_ms'])} ({t['median_ms'] / base:.2f}x)"

            segkit = [r for k, r in lat.items() if k != REFERENCE]
            default = _default_row(entry, lat)
            rows.append([model, size, _ms(base), cell(lat.get("eager"), "model"),
                         cell(default, "predictor", label=True),
                         cell(_fastest_predictor(segkit, exact=True), "predictor", label=True),
                         cell(_fastest_predictor(segkit, exact=False), "predictor", label=True)])
    return headers, rows


def fact_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    sizes = results["protocol"]["sizes"]
    limits = results["machine"]["limits"]
    headers = ["config", "params (deploy)", *[f"GFLOPs {s}" for s in sizes],
               *[f"{p} limit ms {s}" for p in limits for s in sizes[:1]],
               *[f"fp32 GEMM GFLOP/s in its {s} run" for s in sizes], "published mIoU (Cityscapes val)"]
    rows = []
    for model, entry in results["models"].items():
        pub = entry.get("published")
        gflops = entry["gflops"]  # a merged file may hold a model at some of the sizes only
        row = [model, f"{entry['params_no_aux'] / 1e6:.2f} M", *[f"{gflops[s]:.1f}" if s in gflops else "" for s in sizes]]
        row += [_ms(limit_ms(gflops[sizes[0]], limits[p])) if sizes[0] in gflops else "" for p in limits]
        probes = entry.get("gemm_probe", {})
        row += [f"{probes[s]['gflops_per_s']:.0f}" if s in probes else "" for s in sizes]
        row.append(f"{pub['miou']:.2f} ({pub['zoo']})" if pub else "—")
        rows.append(row)
    return headers, rows


def markdown(results: dict, picture: str | None) -> str:
    m = results["machine"]
    cpu = m["cpu"]
    lines = [f"Machine: **{cpu['model']}**, {m['threads']} threads of {cpu['cores']} cores, {cpu['clock_ghz']} GHz "
             f"({', '.join(cpu['flags'])}); " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".",
             gemm_line(results),
             f"Generated by `{results['command']}`.", ""]
    lines.append(tabulate(fact_rows(results)[1], headers=fact_rows(results)[0], tablefmt="github"))
    for size in results["protocol"]["sizes"]:
        for timing, what in (("model", "forward pass"), ("predictor", "Predictor end to end")):
            headers, rows = speed_rows(results, size, timing)
            if rows and any(cell for row in rows for cell in row[1:]):
                lines += ["", f"**{what}, {size}**, median ms (x its limit: {LIMITS_NOTE}):", "",
                          tabulate(rows, headers=headers, tablefmt="github")]
    headers, rows = default_rows(results)
    if rows:
        lines += ["", "**The exact default against the fp32 limit** (Predictor end to end; the limit at the nominal "
                  "clock, and at the rate the fp32 GEMM reached in the same run):", "",
                  tabulate(rows, headers=headers, tablefmt="github")]
    headers, rows = reference_rows(results)
    if rows:
        lines += ["", f"**Against {results['protocol']['reference']['title']}** (its forward pass in the same "
                  "round-robin), median ms (x its time):", "", tabulate(rows, headers=headers, tablefmt="github")]
    if picture:
        lines += ["", f"![latency against mIoU]({picture})"]
    return "\n".join(lines)


def gemm_line(results: dict) -> str:
    """The fp32 GEMM rates of the runs against the nominal fp32 peak: how much of its clock the machine gave."""
    rates = [p["gflops_per_s"] for e in results["models"].values() for p in e.get("gemm_probe", {}).values()]
    nominal = results["machine"]["limits"].get("fp32", {}).get("gops")
    if not rates:
        return ""
    text = f"A 1536x1536 fp32 GEMM ran at {min(rates):.0f}–{max(rates):.0f} GFLOP/s during these runs"
    return text + (f" (nominal fp32 peak {nominal:.0f})." if nominal else ".")


def write_page(page: str, block: str) -> None:
    with open(page) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"error: {page} has no {BEGIN} ... {END} block to rewrite")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(page, "w") as f:
        f.write(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def report(results: dict, out: str, args: argparse.Namespace) -> None:
    for size in results["protocol"]["sizes"]:
        for timing in ("model", "predictor"):
            headers, rows = speed_rows(results, size, timing)
            if rows and any(cell for row in rows for cell in row[1:]):
                print(f"\n{size}, {timing}: median ms (x its limit: {LIMITS_NOTE})")
                print(tabulate(rows, headers=headers))
    headers, rows = default_rows(results)
    if rows:
        print("\nthe default Predictor against the fp32 limit: nominal, and at the GEMM's rate in the same run")
        print(tabulate(rows, headers=headers))
    headers, rows = reference_rows(results)
    if rows:
        print("\nagainst the reference: median ms (x its forward pass)")
        print(tabulate(rows, headers=headers))
    headers, rows = fact_rows(results)
    print("\n" + tabulate(rows, headers=headers))
    errors = {m: e["errors"] for m, e in results["models"].items() if e.get("errors")}
    for model, errs in errors.items():
        for what, text in errs.items():
            print(f"{model} {what}: {text.splitlines()[0][:200]}")
    picture = None
    if not args.facts_only:
        size = args.plot_size and f"{args.plot_size[0]}x{args.plot_size[1]}"
        # matplotlib was checked before the run (main): without it the JSON and the page are still written.
        no_plot = matplotlib_missing()
        picture = None if no_plot else plot_results(results, os.path.splitext(out)[0] + ".png", size=size)
        why = f"none ({no_plot})" if no_plot else "none (no model has a published mIoU)"
        print(f"\nresults: {out}" + (f"\npicture: {picture}" if picture else f"\npicture: {why}"))
    if args.page:
        rel = picture and os.path.relpath(picture, os.path.dirname(os.path.abspath(args.page)))
        write_page(args.page, markdown(results, rel))
        print(f"page: {args.page}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger()
    if not (args.facts_only or args.from_json) and matplotlib_missing():  # said before a long run, not after it
        print(f"picture skipped: {matplotlib_missing()}", file=sys.stderr, flush=True)
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        print_protocol(results)
        report(results, args.from_json, args)
        return 0
    # The exports and INT8 files of random weights are throwaway: keep them out of the user's cache.
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SEGKIT_CACHE"] = cache
        results = measure(args)
    report(results, results.pop("out"), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
