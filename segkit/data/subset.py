"""A fixed, seeded share of the training split as labelled data, the rest as unlabelled images.

DATASET.TRAIN_SUBSET f in (0, 1) keeps round(f * n) of the n training samples (at least one), drawn by
DATASET.TRAIN_SUBSET_SEED alone, so that runs of any SEED (and the supervised-only partner of a
semi-supervised run) train on the same labels. DATASET.UNLABELED "train_rest" names the other samples.
`write_subset_lists` records both in the list-file format of the folder dataset (DATASET.LIST_FILE).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..utils.io import atomic_write_text
from .base import Sample, SegDataset


def check_fraction(fraction: float) -> float:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"DATASET.TRAIN_SUBSET must be in (0, 1) (0: the whole split), got {fraction}")
    return float(fraction)


def split_samples(samples: Sequence[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(labelled, rest): a seeded choice of round(fraction * n) samples (at least 1) and the others, both in
    the split's own order. The choice depends on (n, fraction, seed) only."""
    fraction = check_fraction(fraction)
    n = len(samples)
    if n == 0:
        raise ValueError("DATASET.TRAIN_SUBSET: the training split has no samples")
    k = min(n, max(1, int(round(fraction * n))))
    chosen = set(np.random.default_rng(int(seed)).permutation(n)[:k].tolist())
    labelled = [s for i, s in enumerate(samples) if i in chosen]
    rest = [s for i, s in enumerate(samples) if i not in chosen]
    return labelled, rest


def restrict_to_subset(dataset: SegDataset, fraction: float, seed: int) -> list[Sample]:
    """Keep the labelled share in `dataset` (its samples and, when checked, their label histograms); the rest
    is returned and kept as `dataset.subset_rest`, for `write_subset_lists`."""
    samples = list(dataset.samples)
    labelled, rest = split_samples(samples, fraction, seed)
    if dataset.label_histograms is not None:
        index = {id(s): i for i, s in enumerate(samples)}
        dataset.label_histograms = [dataset.label_histograms[index[id(s)]] for s in labelled]
    dataset.samples = labelled
    dataset.subset_rest = rest
    return rest


def write_subset_lists(output_dir: str, labelled: Sequence[Sample], rest: Sequence[Sample]) -> tuple[str, str]:
    """OUTPUT_DIR/train_labelled.txt and train_unlabelled.txt, "image label" lines (absolute paths): the split a
    run trained on, readable again through DATASET.LIST_FILE. The unlabelled list keeps the labels the run held
    back, so a teacher's pseudo-labels can be scored on exactly the images it labels (tools/evaluate.py with
    DATASET.LIST_FILE set to it); training reads the rest through DATASET.UNLABELED, never these labels."""
    def line(s: Sample) -> str:
        return " ".join(os.path.abspath(path) for path in (s.image, s.label) if path) + "\n"

    paths = (os.path.join(output_dir, "train_labelled.txt"), os.path.join(output_dir, "train_unlabelled.txt"))
    for path, samples in zip(paths, (labelled, rest)):
        atomic_write_text(path, "".join(map(line, samples)))
    return paths
