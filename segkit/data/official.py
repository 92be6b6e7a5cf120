"""What the datasets read in their official layout share: pairing images with labels under two folder
trees, a label table built from the official ids, and the constructor every such dataset runs.

Each dataset module (cocostuff, ade20k, voc, bdd100k, mapillary, kitti, acdc, dark_zurich) declares its
classes, palette, split folders and value table, and finds its samples; `OfficialDataset` does the rest
the way Cityscapes does: one lookup table for the label values, headers checked and label histograms
taken once per file (cached by mtime and size, so a re-index of 118k COCO labels reads nothing), and a
value outside the table an error naming the file.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping

import numpy as np
from yacs.config import CfgNode

from .base import Sample, SegDataset
from .labels import LabelReader

UNKNOWN = -1  # a value of no official id: the index check names the file that holds it


def value_table(pairs: Mapping[int, int] | Iterable[tuple[int, int]], ignore_values: Iterable[int] = (),
                ignore_index: int = 255) -> np.ndarray:
    """int64 table over every uint16 value: stored value -> train id for `pairs`, `ignore_values` -> the
    ignore index, every other value UNKNOWN."""
    table = np.full(65536, UNKNOWN, dtype=np.int64)
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    for value, train_id in items:
        table[int(value)] = int(train_id)
    table[list(ignore_values)] = ignore_index
    return table


def find_pairs(image_root: str, image_suffix: str, label_root: str | None, label_suffix: str,
               strict: bool = True) -> list[Sample]:
    """Every file under `image_root` (any depth) whose name ends with `image_suffix`, sorted, each with the
    label at the same relative path under `label_root` with `label_suffix` in place of the image suffix.

    `label_root` None: no labels. A missing label is an error naming both files, or with `strict` False
    (the checker) a sample whose label is None."""
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"image folder not found: {image_root}")
    found = []
    for folder, dirs, files in os.walk(image_root):
        dirs.sort()
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(image_suffix)]
    if not found:
        raise FileNotFoundError(f"no *{image_suffix} images under {image_root}")
    samples = []
    for path in found:
        rel = os.path.relpath(path, image_root)[: -len(image_suffix)]
        label = None if label_root is None else os.path.join(label_root, rel + label_suffix)
        if label is not None and not os.path.isfile(label):
            if strict:
                raise FileNotFoundError(f"label of {path} not found: {label}")
            label = None
        samples.append(Sample(path, label, os.path.basename(rel)))
    return samples


def list_pairs(list_file: str, image_pattern: str, label_pattern: str | None, strict: bool = True) -> list[Sample]:
    """Samples named by the ids of an official list file (one per line; a line of several paths gives its
    first file's stem), paths made by formatting the patterns with {id}."""
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"split list not found: {list_file}")
    with open(list_file, encoding="utf-8") as f:
        ids = [os.path.splitext(os.path.basename(line.split()[0]))[0] for line in f if line.strip()]
    if not ids:
        raise ValueError(f"split list {list_file} names no images")
    samples = []
    for n, sample_id in enumerate(ids, 1):
        image = image_pattern.format(id=sample_id)
        if not os.path.isfile(image):
            raise FileNotFoundError(f"{list_file}:{n}: image not found: {image}")
        label = None if label_pattern is None else label_pattern.format(id=sample_id)
        if label is not None and not os.path.isfile(label):
            if strict:
                raise FileNotFoundError(f"{list_file}:{n}: label of {image} not found: {label}")
            label = None
        samples.append(Sample(image, label, sample_id))
    return samples


class OfficialDataset(SegDataset):
    """A dataset in its official layout with fixed classes: subclasses set `default_classes`,
    `default_palette`, `title` and `split_dirs`, and define `find_samples(cfg, folder, strict)` (the samples
    of the split stored under `folder`) and the classmethod `label_table(cfg)` (int64 table of every uint16
    value: train id, the ignore index, or UNKNOWN; see `value_table`).

    `split_dirs` maps the config's split names (DATASET.TRAIN_SPLIT ...) to the download's folder or list
    names; a name it lacks is used as it is, so the official names work too. `groups` (the condition of
    each sample, ACDC) is None where the dataset has no such partition.
    """

    split_dirs: Mapping[str, str] = {}
    unlabelled_splits: tuple[str, ...] = ()  # folders the download holds without labels (Dark Zurich's train)
    export_table: Callable[[], np.ndarray] | None = None  # train id -> stored id for submissions, or None

    def __init__(self, cfg: CfgNode, split: str, transform: Callable | None = None, check_labels: bool | None = None,
                 strict: bool = True) -> None:
        d = cfg.DATASET
        if not os.path.isdir(d.ROOT):
            raise FileNotFoundError(f"{self.title} root not found: {d.ROOT} (DATASET.ROOT)")
        names, palette = self.declared_classes(cfg)
        folder = self.split_dirs.get(split, split)
        samples = self.find_samples(cfg, folder, strict)
        # Every split but the test split and those released without labels is a labelled one, so a missing
        # label folder is not a silent "OK"; a test split is labelled where its files are (COCO-Stuff 10k's).
        expects_labels = False if folder in self.unlabelled_splits else True if split != d.TEST_SPLIT else None
        super().__init__(samples, names, palette, d.IGNORE_INDEX, self.label_table(cfg), transform,
                         reader=self.label_reader(), train_id_to_label_id=self.export_table() if self.export_table else None,
                         expects_labels=expects_labels)
        self.root, self.split = d.ROOT, split
        self.groups: list[str] | None = self.sample_groups(cfg)
        if strict:
            self.check_index(d.CHECK_LABELS if check_labels is None else check_labels)

    indexed_labels: bool = False  # labels are indexed (palette) PNGs, read as their indices (VOC, Mapillary)

    def label_reader(self) -> Callable[[str], np.ndarray]:
        return LabelReader(pil_palette=self.indexed_labels)

    def sample_groups(self, cfg: CfgNode) -> list[str] | None:
        return None


def bitwise_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """The Pascal VOC colour map (the bits of the class index spread over R, G and B, high bits first): VOC's
    official label colours, and distinct colours for any number of classes up to 256."""
    palette = []
    for index in range(num_classes):
        rgb, c = [0, 0, 0], index
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << bit
            c >>= 3
        palette.append(tuple(rgb))
    return palette
