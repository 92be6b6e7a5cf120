"""The generic folder dataset: images and labels paired by stem in two folders, or a list file.

DATASET.NAME 'folder' reads any such layout; the classes, palette, ignore index and a value-to-train-id
mapping are declared in the config. Labels are read and checked as segkit.data.labels describes.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import cv2
from yacs.config import CfgNode

from ..utils.images import IMAGE_EXTENSIONS
from .base import Sample, SegDataset, build_label_lut
from .labels import LabelReader, is_palette_png


def _files_by_stem(folder: str, suffix: str = "") -> dict[str, str]:
    out = {}
    for f in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXTENSIONS and stem.endswith(suffix):
            out[stem[: len(stem) - len(suffix)] if suffix else stem] = os.path.join(folder, f)
    return out


def paired_samples(image_dir: str, label_dir: str | None, label_suffix: str = "", strict: bool = True) -> list[Sample]:
    """Images of `image_dir` with the label of the same stem (+ suffix) in `label_dir` (None: no labels).

    An image without a label is an error, unless not `strict` (the checker), where its label is None.
    """
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    images = _files_by_stem(image_dir)
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    if label_dir is None:
        return [Sample(p, None, s) for s, p in images.items()]
    if not os.path.isdir(label_dir):
        raise FileNotFoundError(f"label folder not found: {label_dir}")
    labels = _files_by_stem(label_dir, label_suffix)
    missing = [p for s, p in images.items() if s not in labels]
    if missing and strict:
        raise FileNotFoundError(f"{len(missing)} image(s) without a label '<stem>{label_suffix}.*' in {label_dir}, "
                                f"first: {missing[0]}")
    return [Sample(p, labels.get(s), s) for s, p in images.items()]


def list_file_samples(list_file: str, root: str, strict: bool = True) -> list[Sample]:
    """Lines 'image [label]', paths relative to `root` unless absolute (not `strict`: missing labels -> None)."""
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"list file not found: {list_file}")
    samples = []
    with open(list_file, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) > 2:
                raise ValueError(f"{list_file}:{n}: expected 'image [label]', got {line.strip()!r}")
            paths = [p if os.path.isabs(p) else os.path.join(root, p) for p in parts]
            for i, p in enumerate(paths):
                if not os.path.isfile(p):
                    if i == 1 and not strict:
                        paths[1] = None
                    else:
                        raise FileNotFoundError(f"{list_file}:{n}: file not found: {p}")
            stem = os.path.splitext(os.path.basename(paths[0]))[0]
            samples.append(Sample(paths[0], paths[1] if len(paths) == 2 else None, stem))
    if not samples:
        raise ValueError(f"list file {list_file} names no images")
    if strict and len({s.label is None for s in samples}) > 1:
        raise ValueError(f"list file {list_file}: some lines have a label and some do not")
    return samples


def list_file_names_labels(list_file: str) -> bool:
    """Whether any line of the list file has a label column (the split is a labelled one, even where the
    label files themselves are missing)."""
    with open(list_file, encoding="utf-8") as f:
        return any(len(line.split()) == 2 for line in f)


def image_samples(path: str, skipped: list[str] | None = None) -> list[Sample]:
    """Unlabelled samples of one image file or of the files of a folder OpenCV can decode (by signature).

    Other files of a folder are left out, and listed in `skipped` when the caller gives one."""
    if os.path.isfile(path):
        files = [path]
        if not cv2.haveImageReader(path):
            raise OSError(f"cannot read image {path}: not a format OpenCV decodes")
    elif os.path.isdir(path):
        entries = [p for p in (os.path.join(path, f) for f in sorted(os.listdir(path))) if os.path.isfile(p)]
        files = [p for p in entries if cv2.haveImageReader(p)]
        if skipped is not None:
            skipped += [p for p in entries if p not in set(files)]
        if not files:
            raise FileNotFoundError(f"no images OpenCV can read in {path}")
    else:
        raise FileNotFoundError(f"input not found: {path}")
    samples, seen = [], {}
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        if stem in seen:  # outputs are named by stem: one would overwrite the other
            raise ValueError(f"{seen[stem]} and {f} share the name {stem!r}")
        seen[stem] = f
        samples.append(Sample(f, None, stem))
    return samples


class FolderDataset(SegDataset):
    """DATASET.NAME 'folder': any images + labels, classes and encoding declared in the config.

    Labels are stored as train ids unless DATASET.LABEL_MAPPING says otherwise, so predictions are
    exported as train ids (`train_id_to_label_id` None). A preset (CamVid) sets the `default_*` values
    that the config's empty keys fall back to.
    """

    default_mapping: Sequence[Sequence[int]] = ()

    @classmethod
    def declared_classes(cls, cfg: CfgNode) -> tuple[list[str], list[list[int]]]:
        """DATASET.CLASS_NAMES / PALETTE, else the preset's; the palette may be empty. No files read."""
        d = cfg.DATASET
        class_names = list(d.CLASS_NAMES) or list(cls.default_classes)
        if not class_names:
            raise ValueError("DATASET.CLASS_NAMES is empty: the folder dataset needs its class names")
        palette = [list(c) for c in (d.PALETTE or cls.default_palette)]
        if palette and (len(palette) < len(class_names) or any(len(c) != 3 for c in palette)):
            raise ValueError(f"DATASET.PALETTE needs an [R, G, B] per class ({len(class_names)}), got {palette}")
        return class_names, palette

    def __init__(self, cfg: CfgNode, split: str, transform: Callable | None = None, check_labels: bool | None = None,
                 strict: bool = True) -> None:
        d = cfg.DATASET
        root = d.ROOT
        if not os.path.isdir(root):
            raise FileNotFoundError(f"dataset root not found: {root} (DATASET.ROOT)")
        class_names, palette = self.declared_classes(cfg)
        mapping = d.LABEL_MAPPING or self.default_mapping
        if d.LIST_FILE:
            list_file = os.path.join(root, d.LIST_FILE.format(split=split))
            samples = list_file_samples(list_file, root, strict)
            expects_labels = list_file_names_labels(list_file)
        else:
            label_dir = os.path.join(root, d.LABEL_DIR.format(split=split))
            if split == d.TEST_SPLIT and not os.path.isdir(label_dir):
                label_dir = None  # an unlabelled test split is fine; other splits must have labels
            samples = paired_samples(os.path.join(root, d.IMAGE_DIR.format(split=split)), label_dir, d.LABEL_SUFFIX,
                                     strict)
            expects_labels = label_dir is not None
        first_label = next((s.label for s in samples if s.label), None)
        reader = LabelReader(palette, pil_palette=bool(first_label) and is_palette_png(first_label))
        lut = build_label_lut(len(class_names), d.IGNORE_INDEX, mapping)
        super().__init__(samples, class_names, palette, d.IGNORE_INDEX, lut, transform, reader,
                         expects_labels=expects_labels)
        self.root, self.split = root, split
        if strict:
            self.check_index(d.CHECK_LABELS if check_labels is None else check_labels)
