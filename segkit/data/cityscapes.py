"""Cityscapes in its official layout, labelIds mapped to the 19 train ids through cityscapesscripts.

    ROOT/leftImg8bit/{split}/{city}/{name}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{name}_gtFine_labelIds.png      (or _gtFine_labelTrainIds.png)
"""
from __future__ import annotations

import glob
import os
from typing import Callable

import numpy as np
from cityscapesscripts.helpers.labels import labels as CS_LABELS

from .folder import Sample, SegDataset

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_TYPES = ("labelIds", "labelTrainIds")

# The 19 evaluated classes in train-id order, straight from the official table.
_TRAIN_LABELS = sorted((lab for lab in CS_LABELS if 0 <= lab.trainId < 255), key=lambda lab: lab.trainId)
CLASS_NAMES: list[str] = [lab.name for lab in _TRAIN_LABELS]
PALETTE: list[tuple[int, int, int]] = [tuple(lab.color) for lab in _TRAIN_LABELS]


def label_id_to_train_id(ignore_index: int = 255) -> np.ndarray:
    """256-entry table labelId -> trainId, `ignore_index` for every id not evaluated (or unknown)."""
    # Built with plain ints: the table has -1 ids (license plate) that NumPy 2 refuses to cast into uint8.
    lut = np.full(256, ignore_index, dtype=np.int64)
    for lab in CS_LABELS:
        if 0 <= lab.id < 256 and 0 <= lab.trainId < 255:
            lut[lab.id] = lab.trainId
    return lut


def train_id_to_label_id() -> np.ndarray:
    """uint8 table of 256: trainId -> labelId for exporting predictions; other values -> 0 (unlabeled)."""
    lut = np.zeros(256, dtype=np.uint8)
    for lab in _TRAIN_LABELS:
        lut[lab.trainId] = lab.id
    return lut


def find_samples(root: str, split: str, label_type: str | None, strict: bool = True) -> list[Sample]:
    """Every image of the split with its label path (label_type None: no labels; not strict: missing -> None)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Cityscapes root not found: {root} (DATASET.ROOT)")
    image_root = os.path.join(root, "leftImg8bit", split)
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"Cityscapes split folder not found: {image_root}")
    images = sorted(glob.glob(os.path.join(image_root, "*", "*" + IMAGE_SUFFIX)))
    if not images:
        raise FileNotFoundError(f"no *{IMAGE_SUFFIX} images under {image_root}/<city>/")
    samples = []
    for path in images:
        name = os.path.basename(path)[: -len(IMAGE_SUFFIX)]
        label = None
        if label_type is not None:
            city = os.path.basename(os.path.dirname(path))
            label = os.path.join(root, "gtFine", split, city, f"{name}_gtFine_{label_type}.png")
            if not os.path.isfile(label):
                if strict:
                    raise FileNotFoundError(f"label of {path} not found: {label}")
                label = None
        samples.append(Sample(path, label, name))
    return samples


class CityscapesDataset(SegDataset):
    """DATASET.NAME 'cityscapes'. The test split (DATASET.TEST_SPLIT) has no labels: all ignore."""

    @classmethod
    def declared_classes(cls, cfg) -> tuple[list[str], list[tuple[int, int, int]]]:
        """The 19 evaluated classes and their official colours (no files read)."""
        return list(CLASS_NAMES), list(PALETTE)

    def __init__(self, cfg, split: str, transform: Callable | None = None, check_labels: bool | None = None,
                 strict: bool = True) -> None:
        # check_labels is accepted for the common interface: the official table maps every value.
        d = cfg.DATASET
        if d.LABEL_TYPE not in LABEL_TYPES:
            raise ValueError(f"DATASET.LABEL_TYPE must be one of {LABEL_TYPES}, got {d.LABEL_TYPE!r}")
        has_labels = split != d.TEST_SPLIT
        samples = find_samples(d.ROOT, split, d.LABEL_TYPE if has_labels else None, strict)
        if d.LABEL_TYPE == "labelIds":
            lut = label_id_to_train_id(d.IGNORE_INDEX)
        else:  # trainIds are stored already; anything but 0..18 (255, -1 written as 255) is ignore
            lut = np.full(256, d.IGNORE_INDEX, dtype=np.int64)
            lut[: len(CLASS_NAMES)] = np.arange(len(CLASS_NAMES))
        full = np.full(65536, d.IGNORE_INDEX, dtype=np.int64)
        full[:256] = lut
        super().__init__(samples, CLASS_NAMES, PALETTE, d.IGNORE_INDEX, full, transform)
        self.root, self.split = d.ROOT, split
        self.train_id_to_label_id = train_id_to_label_id()
