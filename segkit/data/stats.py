"""Dataset statistics: what tools/check_dataset.py reports, and class weights from pixel counts."""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import cv2
import numpy as np
from yacs.config import CfgNode

from .base import SegDataset, read_image
from .build import check_num_classes
from .labels import check_files, label_histograms


def median_frequency_weights(class_pixels: Sequence[int]) -> list[float]:
    """Median-frequency balancing (Eigen & Fergus): weight_c = median(freq) / freq_c.

    freq_c is the class's share of all counted pixels; the median runs over the classes present. A class
    with no pixel gets weight 0: it never appears as a target, so its weight never matters.
    """
    counts = np.asarray(class_pixels, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or (counts < 0).any():
        raise ValueError(f"class_pixels must be non-negative counts, one per class, got {list(class_pixels)}")
    if counts.sum() == 0:
        raise ValueError("class_pixels are all zero: no labelled pixel to weight by")
    freq = counts / counts.sum()
    median = float(np.median(freq[freq > 0]))
    return [median / f if f > 0 else 0.0 for f in freq.tolist()]


def _split_counts(dataset: SegDataset, raw: dict[int, int]) -> tuple[np.ndarray, int, dict[str, int]]:
    """Raw value counts -> (pixels per train id, ignored pixels, {unknown value: pixels})."""
    class_pixels = np.zeros(dataset.num_classes, dtype=np.int64)
    ignored, unknown = 0, {}
    for v, n in sorted(raw.items()):
        t = int(dataset.value_lut[v])
        if 0 <= t < dataset.num_classes:
            class_pixels[t] += n
        elif t == dataset.ignore_index:
            ignored += n
        else:
            unknown[str(v)] = n
    return class_pixels, ignored, unknown


def _raw_totals(hists) -> dict[int, int]:
    total: dict[int, int] = {}
    for h in hists:
        for v, n in (h or {}).items():
            total[v] = total.get(v, 0) + n
    return total


def count_class_pixels(dataset: SegDataset, workers: int = 4) -> list[int]:
    """Pixels per train id over the dataset's labels (ignored and unknown values left out); cached scan."""
    hists = label_histograms([s.label for s in dataset.samples if s.label is not None], dataset.read_raw_label,
                             workers=workers)
    return _split_counts(dataset, _raw_totals(hists))[0].tolist()


def _image_stats(path: str) -> tuple[tuple[int, int], np.ndarray, np.ndarray] | str:
    try:
        img = read_image(path)
    except OSError as e:
        return str(e)
    mean, std = cv2.meanStdDev(img)
    n = img.shape[0] * img.shape[1]
    mean, std = mean.ravel()[::-1] / 255.0, std.ravel()[::-1] / 255.0  # BGR -> RGB, 0..1 scale
    return img.shape[:2], mean * n, (std**2 + mean**2) * n


def scan_dataset(dataset: SegDataset, image_stats: bool = True, workers: int = 4) -> dict:
    """Read every label (and image) of `dataset` once and report counts and inconsistencies.

    Build the dataset with `strict=False` so that images without labels are listed rather than raised.
    `ok` is False when a label holds a value that is neither a class nor ignored, an image has no label
    (a labelled split, `dataset.expects_labels`: even when none has one), a label's size differs from its
    image, or a file cannot be read.
    """
    samples = dataset.samples
    errors: list[str] = []
    file_problems: list[str] = []
    check_files(samples, workers=workers, errors=file_problems)  # truncated or unreadable files, size mismatches
    labelled = [s for s in samples if s.label is not None]
    without = [s.image for s in samples if s.label is None]
    hists = label_histograms([s.label for s in labelled], dataset.read_raw_label, workers=workers, errors=errors)
    bad_files: dict[str, list[int]] = {}
    label_pixels: dict[str, int] = {}
    for s, h in zip(labelled, hists):
        if h is None:
            continue
        label_pixels[s.image] = sum(h.values())
        values = np.array(sorted(h), dtype=np.int64)
        bad = values[~dataset.is_valid_value(values)]
        if len(bad):
            bad_files[s.label] = bad.tolist()
    raw_total = _raw_totals(hists)
    class_pixels, ignored, unknown = _split_counts(dataset, raw_total)

    report: dict = {"num_images": len(samples), "num_labelled": len(labelled)}
    mismatched: list[str] = []
    if image_stats:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # decoding releases the GIL
            results = list(pool.map(_image_stats, [s.image for s in samples]))
        sizes, total, sum_c, sumsq_c = [], 0, np.zeros(3), np.zeros(3)
        for s, r in zip(samples, results):
            if isinstance(r, str):
                errors.append(r)
                continue
            (h, w), sm, sq = r
            sizes.append((h, w))
            total += h * w
            sum_c += sm
            sumsq_c += sq
            if s.image in label_pixels and label_pixels[s.image] != h * w:
                mismatched.append(f"{s.label} ({label_pixels[s.image]} pixels) vs image {s.image} ({w}x{h})")
        if sizes:
            hs, ws = zip(*sizes)
            report["image_size"] = {"min": [min(hs), min(ws)], "max": [max(hs), max(ws)]}
            mean = sum_c / total
            report["mean"] = mean.tolist()
            report["std"] = np.sqrt(np.maximum(sumsq_c / total - mean**2, 0)).tolist()
    counted = int(class_pixels.sum())
    report.update({
        "class_pixels": dict(zip(dataset.class_names, class_pixels.tolist())),
        "class_share": {n: (100.0 * c / counted if counted else math.nan)
                        for n, c in zip(dataset.class_names, class_pixels.tolist())},
        "ignored_pixels": ignored,
        "unknown_values": unknown,
        "label_values": sorted(raw_total),
        "files_with_unknown_values": bad_files,
        "labels_expected": dataset.expects_labels,
        "images_without_labels": without if dataset.expects_labels else [],
        "size_mismatches": mismatched,
        "file_problems": file_problems,
        "errors": errors,
        "median_freq_weights": median_frequency_weights(class_pixels.tolist()) if counted else [],
    })
    report["ok"] = not (unknown or report["images_without_labels"] or mismatched or errors or file_problems)
    return report


def add_config_problems(report: dict, cfg: CfgNode, dataset: SegDataset, split: str) -> list[str]:
    """Add to a `scan_dataset` report of `split` what the files show only beside the config, as "problems" that
    make it not `ok`: MODEL.NUM_CLASSES other than the dataset's class count (the check the trainer and
    evaluate.py make), and a labelled split where no image has a label. Returns the problems."""
    problems = []
    try:
        check_num_classes(cfg, dataset)
    except ValueError as e:
        problems.append(str(e))
    if report["labels_expected"] and report["num_labelled"] == 0:
        problems.append(f"no image of split '{split}' has a label: is its label folder missing? (only "
                        f"DATASET.TEST_SPLIT '{cfg.DATASET.TEST_SPLIT}' may be unlabelled)")
    report["problems"] = problems
    if problems:
        report["ok"] = False
    return problems
