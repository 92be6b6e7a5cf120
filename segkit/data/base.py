"""The dataset contract: `SegDataset`, the base of every segmentation dataset in segkit.

A dataset is a list of (image, label, name) samples, a table mapping stored label values to train ids,
and the attributes below, which the trainer, the evaluator and the tools read directly:

- `class_names`: the evaluated classes in train-id order; `num_classes` is their number;
- `palette`: an (R, G, B) per class for exports (evenly spread hues where the dataset declares none);
- `ignore_index`: the label value no loss or metric counts;
- `has_labels`: every image has a label file (an unlabelled split yields labels that are all ignore);
- `expects_labels`: the split is a labelled one (every split but an unlabelled test split), so an image
  without a label file is an inconsistency, even when no image of the split has one;
- `train_id_to_label_id`: uint8 table of 256 from train ids back to the ids stored in label files,
  for submission files (Cityscapes), or None where labels are written as train ids;
- `instance_spec`: the categories and instance classes of the benchmark metrics (segkit/data/categories.py),
  or None; a dataset that declares instance classes yields the ground-truth instance map as "instances";
- `title`: how reports name the dataset; `groups` / `group_key`: a group per sample (ACDC's conditions),
  which evaluation also reports apart, or None.

The classes are also declared without reading a file, by the classmethod `declared_classes(cfg)`, so a
tool can name and colour predictions of a dataset that is not on disk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from yacs.config import CfgNode

from .categories import InstanceSpec
from .labels import LabelReader, check_files, label_histograms


@dataclass(frozen=True)
class Sample:
    image: str
    label: str | None
    name: str


def read_image(path: str) -> np.ndarray:
    """BGR uint8 HxWx3; a file OpenCV cannot decode is an error naming it."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return img


def display_palette(palette: Sequence[Sequence[int]], num_classes: int) -> list[tuple[int, int, int]]:
    """An (R, G, B) per class for exports: the given palette, or evenly spread hues when it is empty."""
    if not len(palette):
        hsv = np.stack([np.linspace(0, 179, num_classes, endpoint=False), np.full(num_classes, 200),
                        np.full(num_classes, 220)], -1).astype(np.uint8)[None]
        palette = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].tolist()
    return [tuple(int(v) for v in c) for c in palette][:num_classes]


def build_label_lut(num_classes: int, ignore_index: int, mapping: Sequence[Sequence[int]] = ()) -> np.ndarray:
    """int64 table over every uint16 value: identity, then `mapping` pairs (value, train id) applied."""
    lut = np.arange(65536, dtype=np.int64)
    for pair in mapping:
        if len(pair) != 2:
            raise ValueError(f"DATASET.LABEL_MAPPING entries must be [value, train_id], got {list(pair)}")
        value, train_id = int(pair[0]), int(pair[1])
        if not (0 <= train_id < num_classes or train_id == ignore_index):
            raise ValueError(f"DATASET.LABEL_MAPPING maps {value} to {train_id}: not a class id nor the ignore index")
        lut[value] = train_id
    return lut


class SegDataset(Dataset):
    """Samples plus the value -> train id table; items are {"image", "label", "name", "path"}.

    Declares the contract of the module docstring. A dataset with fixed classes sets `default_classes`
    and `default_palette`; one whose classes come from the config overrides `declared_classes`.
    """

    class_names: list[str]
    num_classes: int
    palette: list[tuple[int, int, int]]
    ignore_index: int
    has_labels: bool
    expects_labels: bool
    train_id_to_label_id: np.ndarray | None
    instance_spec: InstanceSpec | None = None
    title: str = ""  # how reports name the dataset ("Cityscapes")
    groups: list[str] | None = None  # a group per sample (ACDC's conditions), reported apart; None: no groups
    group_key: str = ""  # what the groups are ("condition")
    label_histograms: list[dict[int, int]] | None = None  # raw value counts per label, when checked

    default_classes: Sequence[str] = ()
    default_palette: Sequence[Sequence[int]] = ()

    @classmethod
    def declared_classes(cls, cfg: CfgNode) -> tuple[list[str], list[list[int]]]:
        """Class names and palette (may be empty) from the config alone, no files read."""
        if not cls.default_classes:
            raise ValueError(f"{cls.__name__} declares no classes")
        return list(cls.default_classes), [list(c) for c in cls.default_palette]

    def __init__(
        self,
        samples: Sequence[Sample],
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]],
        ignore_index: int,
        lut: np.ndarray,
        transform: Callable | None = None,
        reader: Callable[[str], np.ndarray] | None = None,
        train_id_to_label_id: np.ndarray | None = None,
        expects_labels: bool | None = None,
    ) -> None:
        if not 0 <= ignore_index <= 255:
            raise ValueError(f"DATASET.IGNORE_INDEX must be in 0..255, got {ignore_index}")
        if train_id_to_label_id is not None and np.shape(train_id_to_label_id) != (256,):
            raise ValueError(f"train_id_to_label_id must have 256 entries, got shape {np.shape(train_id_to_label_id)}")
        self.samples = list(samples)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.palette = display_palette(palette, self.num_classes)
        self.ignore_index = int(ignore_index)
        self.has_labels = all(s.label is not None for s in self.samples)
        # Where the subclass does not say, any label present makes the split a labelled one.
        self.expects_labels = any(s.label is not None for s in self.samples) if expects_labels is None \
            else bool(expects_labels)
        self.train_id_to_label_id = None if train_id_to_label_id is None else np.asarray(train_id_to_label_id,
                                                                                          dtype=np.uint8)
        self._set_value_lut(np.asarray(lut, dtype=np.int64))
        self.transform = transform
        self.read_raw_label = reader or LabelReader()

    def _set_value_lut(self, value_lut: np.ndarray) -> None:
        self.value_lut = value_lut
        valid = (value_lut >= 0) & (value_lut < self.num_classes)
        # Runtime table: values the index check let through map to themselves; anything else to ignore
        # (only reachable with DATASET.CHECK_LABELS off), never to an id the loss cannot take.
        self.lut = np.where(valid, value_lut, self.ignore_index).astype(np.uint8)

    def remap_classes(self, class_names: Sequence[str], palette: Sequence[Sequence[int]], class_map: np.ndarray) -> None:
        """Read the labels as another class list: train id c becomes class `class_map[c]`, or the ignore index
        where it is -1 (a class with no counterpart). One table still maps stored values straight to the new
        ids; predictions are then exported as the new train ids."""
        class_map = np.asarray(class_map, dtype=np.int64)
        if class_map.shape != (self.num_classes,):
            raise ValueError(f"class_map needs one entry per class ({self.num_classes}), got shape {class_map.shape}")
        old = self.value_lut
        is_class = (old >= 0) & (old < self.num_classes)
        mapped = class_map[np.where(is_class, old, 0)]
        new = np.where(is_class, np.where(mapped >= 0, mapped, self.ignore_index), old)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.palette = display_palette(palette, self.num_classes)
        self.train_id_to_label_id = None
        self.instance_spec = None
        self._set_value_lut(new)

    def __len__(self) -> int:
        return len(self.samples)

    def join(self, other: "SegDataset") -> None:
        """Append the samples of another split of the same dataset (DATASET.TRAIN_SPLIT 'train+val');
        what holds per sample (label histograms, groups) is kept where both splits have it."""
        joined = f"cannot join split {getattr(other, 'split', '?')!r} to {getattr(self, 'split', '?')!r}"
        if other.class_names != self.class_names or not np.array_equal(other.value_lut, self.value_lut):
            raise ValueError(f"{joined}: their classes or label tables differ")
        images, names = {s.image for s in self.samples}, {s.name for s in self.samples}
        again = [s for s in other.samples if s.image in images or s.name in names]
        if again:  # one folder read twice (KITTI's train and val), or two files of one name (predictions collide)
            raise ValueError(f"{joined}: {len(again)} of its images are already in it, or share a name with one "
                             f"(first: {again[0].image}); join splits of distinct images")
        self.samples += other.samples
        self.has_labels = self.has_labels and other.has_labels
        self.expects_labels = self.expects_labels and other.expects_labels
        both = self.label_histograms is not None and other.label_histograms is not None
        self.label_histograms = self.label_histograms + other.label_histograms if both else None
        self.groups = self.groups + other.groups if self.groups is not None and other.groups is not None else None

    def check_index(self, check_labels: bool) -> None:
        """Checks run once when a split is indexed, so a bad file stops the run before the first iteration
        rather than when its sample is drawn hours in: readable, complete headers and matching sizes
        (always: headers only, cached), and with `check_labels` every label value a class or ignored
        (one histogram per label file, cached)."""
        check_files(self.samples)
        if check_labels and self.has_labels:
            self.label_histograms = label_histograms([s.label for s in self.samples], self.read_raw_label)
            check_label_values(self, self.label_histograms)

    def is_valid_value(self, values: np.ndarray) -> np.ndarray:
        mapped = self.value_lut[values]
        return ((mapped >= 0) & (mapped < self.num_classes)) | (mapped == self.ignore_index)

    def load_label(self, sample: Sample, shape: tuple[int, int]) -> np.ndarray:
        """uint8 train ids at the image size (all ignore without a label file)."""
        if sample.label is None:
            return np.full(shape, self.ignore_index, dtype=np.uint8)
        raw = self.read_raw_label(sample.label)
        if raw.shape[:2] != shape:
            raise ValueError(f"label {sample.label} is {raw.shape[1]}x{raw.shape[0]} but image {sample.image} "
                             f"is {shape[1]}x{shape[0]} (width x height)")
        if raw.dtype == np.uint8:
            return cv2.LUT(raw, self.lut[:256])
        return self.lut[raw.astype(np.int64)]

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = read_image(sample.image)
        label = self.load_label(sample, image.shape[:2])
        if self.transform is not None:
            image, label = self.transform(image, label)
        else:
            image = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1)).astype(np.float32) / 255.0
        return {"image": torch.from_numpy(image), "label": torch.from_numpy(label.astype(np.int64)),
                "name": sample.name, "path": sample.image}


def check_label_values(dataset: "SegDataset", hists: Sequence[dict[int, int]]) -> None:
    """Raise naming every file (first 10) whose values are neither a class nor ignored."""
    bad = []
    for sample, hist in zip(dataset.samples, hists):
        values = np.array(sorted(hist), dtype=np.int64)
        wrong = values[~dataset.is_valid_value(values)] if len(values) else values
        if len(wrong):
            bad.append(f"{sample.label}: {wrong.tolist()}")
    if bad:
        more = f"\n... and {len(bad) - 10} more files" if len(bad) > 10 else ""
        raise ValueError(
            f"{len(bad)} label file(s) hold values outside the {dataset.num_classes} classes and not the ignore "
            f"index {dataset.ignore_index} (fix DATASET.CLASS_NAMES / LABEL_MAPPING / IGNORE_INDEX):\n"
            + "\n".join(bad[:10]) + more)
