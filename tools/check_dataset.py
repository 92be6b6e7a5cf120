#!/usr/bin/env python
"""Scan a dataset split and report whether its labels agree with the declared classes.

    python tools/check_dataset.py --config-file configs/camvid/bisenetv1_r18.yaml [--split train] [--json out.json]
    python tools/check_dataset.py --list        # the DATASET.NAME values segkit reads

Prints the number of images, their size range, the label values found against the classes, images
without labels, per-class pixel counts and share, ignored and unknown pixels, the image mean and std,
and median-frequency class weights. Exits 1 on an inconsistency (unknown label values, missing labels --
a labelled split without any label too --, label/image size mismatch, unreadable files, MODEL.NUM_CLASSES
different from the dataset's classes). The test split (DATASET.TEST_SPLIT) is unlabelled: its images only.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tabulate import tabulate  # noqa: E402

from segkit.config.loader import load_cfg  # noqa: E402
from segkit.data import DATASETS, build_dataset, dataset_classes  # noqa: E402
from segkit.data.build import dataset_title  # noqa: E402
from segkit.data.stats import add_config_problems, scan_dataset  # noqa: E402
from segkit.utils.cli import parse_tool_args, run_tool  # noqa: E402
from segkit.utils.io import atomic_write_json, check_writable  # noqa: E402


def _list(title: str, items, limit: int = 10) -> list[str]:
    if not items:
        return []
    lines = [f"{title}: {len(items)}"] + [f"  {x}" for x in list(items)[:limit]]
    return lines + ([f"  ... and {len(items) - limit} more"] if len(items) > limit else [])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", help="config naming the dataset (DATASET.NAME, DATASET.ROOT)")
    parser.add_argument("--list", action="store_true", help="list the DATASET.NAME values and their classes, then exit")
    parser.add_argument("--split", default="", help="split to scan (default: DATASET.TRAIN_SPLIT)")
    parser.add_argument("--json", default="", help="write the report as JSON here")
    parser.add_argument("--no-image-stats", action="store_true", help="skip decoding images (no size/mean/std)")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides")
    args = parse_tool_args(parser, argv)
    if not args.list and not args.config_file:
        parser.error("--config-file is required (or --list)")
    return args


def list_datasets() -> int:
    """Print every registered DATASET.NAME with its title and classes (declared, no files read)."""
    rows = []
    for name in sorted(DATASETS):
        cfg = load_cfg(None, ["DATASET.NAME", name])
        try:
            count = str(len(dataset_classes(cfg)[0]))
        except ValueError:  # the folder dataset takes its classes from the config
            count = "DATASET.CLASS_NAMES"
        rows.append((name, dataset_title(name), count))
    print(tabulate(rows, headers=["DATASET.NAME", "dataset", "classes"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda: list_datasets() if args.list else check(args))


def check(args: argparse.Namespace) -> int:
    """Print the report (and write it as JSON); 0 when the split is consistent, else 1."""
    cfg = load_cfg(args.config_file, args.opts)
    if args.json:
        check_writable(args.json, "--json")  # before the scan, which reads every file
    split = args.split or cfg.DATASET.TRAIN_SPLIT
    dataset = build_dataset(cfg, split, train=False, check_labels=False, strict=False)
    report = scan_dataset(dataset, image_stats=not args.no_image_stats, workers=max(1, cfg.DATALOADER.NUM_WORKERS))
    report["split"] = split
    report["dataset"] = cfg.DATASET.NAME
    problems = add_config_problems(report, cfg, dataset, split)

    labels = (f"{report['num_labelled']} with labels" if report["labels_expected"] else
              "no labels expected (the test split, DATASET.TEST_SPLIT): images checked only")
    print(f"{cfg.DATASET.NAME} '{split}' at {cfg.DATASET.ROOT}: {report['num_images']} images, {labels}")
    if "image_size" in report:
        (h0, w0), (h1, w1) = report["image_size"]["min"], report["image_size"]["max"]
        print(f"image size (HxW): {h0}x{w0} .. {h1}x{w1}")
        print("image mean (RGB, 0..1): " + ", ".join(f"{v:.4f}" for v in report["mean"]))
        print("image std  (RGB, 0..1): " + ", ".join(f"{v:.4f}" for v in report["std"]))
    print(f"label values found: {report['label_values']}")
    weights = report["median_freq_weights"] or [math.nan] * dataset.num_classes
    rows = [(i, n, report["class_pixels"][n], f"{report['class_share'][n]:.2f}", f"{w:.3f}")
            for i, (n, w) in enumerate(zip(dataset.class_names, weights))]
    print(tabulate(rows, headers=["id", "class", "pixels", "share %", "median-freq weight"]))
    print(f"ignored pixels (value -> {dataset.ignore_index}): {report['ignored_pixels']}")
    absent = [n for n, c in report["class_pixels"].items() if c == 0]
    lines = _list("classes without any pixel (warning)", absent)
    lines += _list("UNKNOWN label values {value: pixels}", [f"{k}: {v}" for k, v in report["unknown_values"].items()])
    lines += _list("files with unknown values", [f"{k}: {v}" for k, v in report["files_with_unknown_values"].items()])
    lines += _list("images without labels", report["images_without_labels"])
    lines += _list("label/image size mismatches", report["size_mismatches"])
    lines += _list("unreadable files", report["errors"])
    lines += _list("truncated or unreadable files, size mismatches (headers)", report["file_problems"])
    lines += _list("config problems", problems)
    print("\n".join(lines))
    if args.json:
        atomic_write_json(args.json, report, indent=1)
    if not report["ok"]:
        print("INCONSISTENT: see above")
    elif report["labels_expected"]:
        print("OK: labels agree with the declared classes")
    else:
        print("OK: every image readable (no labels to check)")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
