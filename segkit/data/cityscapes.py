"""Cityscapes in its official layout, labelIds mapped to the 19 train ids through cityscapesscripts.

    ROOT/leftImg8bit/{split}/{city}/{name}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{name}_gtFine_labelIds.png      (or _gtFine_labelTrainIds.png)
    ROOT/gtFine/{split}/{city}/{name}_gtFine_instanceIds.png   (optional: iIoU and category iIoU)
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from yacs.config import CfgNode

from .base import Sample, SegDataset
from .categories import cityscapes_instance_spec
from .labels import LabelReader
from .official import find_pairs
from .seg_transforms import SegTrainTransform

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


def label_id_table(ignore_index: int = 255) -> np.ndarray:
    """int64 table over every uint16 value for files of Cityscapes label ids (Cityscapes, KITTI, ACDC, Dark
    Zurich): evaluated ids -> train ids, the other official ids -> ignore, values of no official id -> -1,
    which the index check reports (a wrong file, a wrong DATASET.LABEL_TYPE)."""
    full = np.full(65536, -1, dtype=np.int64)
    official = [lab.id for lab in CS_LABELS if lab.id >= 0]
    full[official] = label_id_to_train_id(ignore_index)[official]
    return full


def train_id_table(ignore_index: int = 255) -> np.ndarray:
    """The same for files of the 19 train ids (0..18, 255 for everything not evaluated; BDD100K's too)."""
    full = np.full(65536, -1, dtype=np.int64)
    full[: len(CLASS_NAMES)] = np.arange(len(CLASS_NAMES))
    full[255] = ignore_index
    return full


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
    label_root = os.path.join(root, "gtFine", split) if label_type is not None else None
    if label_root is not None and strict and not os.path.isdir(label_root):
        # Named as a whole rather than through the first image whose label is missing.
        images = len(find_pairs(image_root, IMAGE_SUFFIX, None, ""))
        raise FileNotFoundError(f"Cityscapes label folder not found: {label_root} ({images} images in "
                                f"{image_root} have no labels)")
    return find_pairs(image_root, IMAGE_SUFFIX, label_root, f"_gtFine_{label_type}.png", strict)


class CityscapesDataset(SegDataset):
    """DATASET.NAME 'cityscapes' (also the demo set, written in this layout). The test split
    (DATASET.TEST_SPLIT) has no labels: all ignore. Predictions export as labelIds for the benchmark."""

    title = "Cityscapes"
    default_classes = CLASS_NAMES
    default_palette = PALETTE

    def __init__(self, cfg: CfgNode, split: str, transform: Callable | None = None, check_labels: bool | None = None,
                 strict: bool = True) -> None:
        d = cfg.DATASET
        if d.LABEL_TYPE not in LABEL_TYPES:
            raise ValueError(f"DATASET.LABEL_TYPE must be one of {LABEL_TYPES}, got {d.LABEL_TYPE!r}")
        has_labels = split != d.TEST_SPLIT
        samples = find_samples(d.ROOT, split, d.LABEL_TYPE if has_labels else None, strict)
        full = label_id_table(d.IGNORE_INDEX) if d.LABEL_TYPE == "labelIds" else train_id_table(d.IGNORE_INDEX)
        super().__init__(samples, CLASS_NAMES, PALETTE, d.IGNORE_INDEX, full, transform,
                         train_id_to_label_id=train_id_to_label_id(), expects_labels=has_labels)
        self.root, self.split = d.ROOT, split
        if strict:
            self.check_index(d.CHECK_LABELS if check_labels is None else check_labels)
        # Instance maps serve evaluation only (a training crop would misalign them), and only when every
        # image has one: the benchmark's iIoU is defined over the whole split.
        self.instance_paths: list[str] = []
        if has_labels and samples and not isinstance(transform, SegTrainTransform):
            paths = [_instance_path(d.ROOT, split, s.image) for s in samples]
            if all(os.path.isfile(p) for p in paths):
                self.instance_paths = paths
                self.instance_spec = cityscapes_instance_spec(CLASS_NAMES)
        self._read_instances = LabelReader()

    def join(self, other: SegDataset) -> None:
        super().join(other)
        # Instance metrics need a map for every image of what is evaluated.
        joined = getattr(other, "instance_paths", [])
        self.instance_paths = self.instance_paths + joined if self.instance_paths and joined else []
        if not self.instance_paths:
            self.instance_spec = None

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        if self.instance_paths:
            inst = self._read_instances(self.instance_paths[index])
            if inst.shape[:2] != tuple(item["label"].shape[-2:]):
                raise ValueError(f"instance map {self.instance_paths[index]} is {inst.shape[1]}x{inst.shape[0]}, "
                                 f"its label is {item['label'].shape[-1]}x{item['label'].shape[-2]}")
            item["instances"] = torch.from_numpy(inst.astype(np.int64))
        return item


def _instance_path(root: str, split: str, image: str) -> str:
    # Beside the label, at the image's place under gtFine (as find_pairs pairs them).
    rel = os.path.relpath(image, os.path.join(root, "leftImg8bit", split))[: -len(IMAGE_SUFFIX)]
    return os.path.join(root, "gtFine", split, rel + "_gtFine_instanceIds.png")
