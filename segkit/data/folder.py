"""Datasets read from image and label files: the shared base, the generic folder dataset and CamVid.

Every dataset in segkit is a `SegDataset`: a list of (image, label, name) samples, a table that maps
stored label values to train ids, and the class names and palette. The folder dataset pairs files by
stem in two directories or reads a list file of "image label" lines. Labels may be single-channel
values, indexed (palette-mode) PNGs read as their indices, or RGB colour PNGs decoded through
DATASET.PALETTE. Every label is histogrammed once while indexing (cached per file by mtime and size),
so a value that is neither a class nor ignored is an error naming the file before training starts.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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


def is_palette_png(path: str) -> bool:
    # OpenCV expands indexed PNGs to colours; their indices are the labels, so they go through PIL.
    if not path.lower().endswith(".png"):
        return False
    from PIL import Image

    with Image.open(path) as im:
        return im.mode == "P"


class LabelReader:
    """Stored label file -> 2-D array of raw values (colour labels: index into `palette`)."""

    def __init__(self, palette: Sequence[Sequence[int]] = (), pil_palette: bool = False) -> None:
        self.pil_palette = pil_palette
        keys = np.array([(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in palette], dtype=np.int64)
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def __call__(self, path: str) -> np.ndarray:
        if self.pil_palette:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode == "P":
                    return np.asarray(im)
        lab = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if lab is None:
            raise OSError(f"cannot read label {path}")
        if lab.ndim == 3:
            return self._decode_colours(lab[..., :3], path)
        return lab

    def _decode_colours(self, bgr: np.ndarray, path: str) -> np.ndarray:
        if not len(self.keys):
            raise ValueError(f"label {path} is a colour image but DATASET.PALETTE is empty: declare the class colours")
        key = (bgr[..., 2].astype(np.int64) << 16) | (bgr[..., 1].astype(np.int64) << 8) | bgr[..., 0]
        pos = np.clip(np.searchsorted(self.keys, key), 0, len(self.keys) - 1)
        known = self.keys[pos] == key
        if not known.all():
            bad = np.unique(key[~known])[:10]
            colours = [((int(k) >> 16) & 255, (int(k) >> 8) & 255, int(k) & 255) for k in bad]
            raise ValueError(f"label {path}: colours not in DATASET.PALETTE (RGB): {colours}")
        return self.order[pos].astype(np.uint8 if len(self.keys) <= 256 else np.uint16)


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
    """Samples plus the value -> train id table; items follow the segkit data contract."""

    def __init__(
        self,
        samples: Sequence[Sample],
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]],
        ignore_index: int,
        lut: np.ndarray,
        transform: Callable | None = None,
        reader: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        if not 0 <= ignore_index <= 255:
            raise ValueError(f"DATASET.IGNORE_INDEX must be in 0..255, got {ignore_index}")
        self.samples = list(samples)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.palette = display_palette(palette, self.num_classes)
        self.ignore_index = int(ignore_index)
        self.has_labels = all(s.label is not None for s in self.samples)
        self.value_lut = np.asarray(lut, dtype=np.int64)
        valid = (self.value_lut >= 0) & (self.value_lut < self.num_classes)
        # Runtime table: values the index check let through map to themselves; anything else to ignore
        # (only reachable with DATASET.CHECK_LABELS off), never to an id the loss cannot take.
        self.lut = np.where(valid, self.value_lut, self.ignore_index).astype(np.uint8)
        self.transform = transform
        self.read_raw_label = reader or LabelReader()

    def __len__(self) -> int:
        return len(self.samples)

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


# ---------------------------------------------------------------------------- label scan with cache
def _cache_path(label_paths: Sequence[str]) -> str:
    base = os.environ.get("SEGKIT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "segkit"))
    digest = hashlib.sha1("\n".join(label_paths).encode()).hexdigest()[:16]
    return os.path.join(base, f"labels-{digest}.json")


def label_histograms(paths: Sequence[str], reader: Callable[[str], np.ndarray], use_cache: bool = True,
                     workers: int = 4, errors: list[str] | None = None) -> list[dict[int, int] | None]:
    """Per label file, {raw value: pixel count}. Cached by (mtime, size) so a re-index reads nothing.

    A file that cannot be read or decoded raises, or with an `errors` list is recorded there (as None).
    """
    paths = [os.path.abspath(p) for p in paths]
    cache_file = _cache_path(paths)
    cache: dict = {}
    if use_cache and os.path.isfile(cache_file):
        try:
            with open(cache_file, encoding="utf-8") as f:
                cache = json.load(f)
        except (OSError, ValueError):
            cache = {}

    def one(path: str) -> dict[int, int]:
        st = os.stat(path)
        hit = cache.get(path)
        if hit and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            return {int(k): v for k, v in hit[2].items()}
        try:
            counts = np.bincount(reader(path).ravel())
        except (OSError, ValueError) as e:
            if errors is None:
                raise
            errors.append(str(e))
            return None
        nz = np.flatnonzero(counts)
        return {int(v): int(counts[v]) for v in nz}

    with ThreadPoolExecutor(max_workers=workers) as pool:  # cv2 decodes release the GIL
        hists = list(pool.map(one, paths))
    if use_cache:
        new = {p: [os.stat(p).st_mtime_ns, os.stat(p).st_size, {str(k): v for k, v in h.items()}]
               for p, h in zip(paths, hists) if h is not None}
        if new != cache:
            try:
                os.makedirs(os.path.dirname(cache_file), exist_ok=True)
                tmp = f"{cache_file}.{os.getpid()}.tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(new, f)
                os.replace(tmp, cache_file)  # atomic: concurrent ranks never read half a file
            except OSError:
                pass  # a read-only home only costs the next index a rescan
    return hists


def check_label_values(dataset: SegDataset, hists: Sequence[dict[int, int]]) -> None:
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


# ---------------------------------------------------------------------------- sample discovery
def _files_by_stem(folder: str, suffix: str = "") -> dict[str, str]:
    out = {}
    for f in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXTS and stem.endswith(suffix):
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
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) in {image_dir}")
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


def image_samples(path: str) -> list[Sample]:
    """Unlabelled samples of one image file or of the files of a folder OpenCV can decode (by signature)."""
    if os.path.isfile(path):
        files = [path]
        if not cv2.haveImageReader(path):
            raise OSError(f"cannot read image {path}: not a format OpenCV decodes")
    elif os.path.isdir(path):
        files = [p for p in (os.path.join(path, f) for f in sorted(os.listdir(path)))
                 if os.path.isfile(p) and cv2.haveImageReader(p)]
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
    """DATASET.NAME 'folder': any images + labels, classes and encoding declared in the config."""

    default_classes: Sequence[str] = ()
    default_palette: Sequence[Sequence[int]] = ()
    default_mapping: Sequence[Sequence[int]] = ()

    @classmethod
    def declared_classes(cls, cfg) -> tuple[list[str], list[list[int]]]:
        """Class names and declared palette (may be empty) from the config alone, no files read."""
        d = cfg.DATASET
        class_names = list(d.CLASS_NAMES) or list(cls.default_classes)
        if not class_names:
            raise ValueError("DATASET.CLASS_NAMES is empty: the folder dataset needs its class names")
        palette = [list(c) for c in (d.PALETTE or cls.default_palette)]
        if palette and (len(palette) < len(class_names) or any(len(c) != 3 for c in palette)):
            raise ValueError(f"DATASET.PALETTE needs an [R, G, B] per class ({len(class_names)}), got {palette}")
        return class_names, palette

    def __init__(self, cfg, split: str, transform: Callable | None = None, check_labels: bool | None = None,
                 strict: bool = True) -> None:
        d = cfg.DATASET
        root = d.ROOT
        if not os.path.isdir(root):
            raise FileNotFoundError(f"dataset root not found: {root} (DATASET.ROOT)")
        class_names, palette = self.declared_classes(cfg)
        mapping = d.LABEL_MAPPING or self.default_mapping
        if d.LIST_FILE:
            samples = list_file_samples(os.path.join(root, d.LIST_FILE.format(split=split)), root, strict)
        else:
            label_dir = os.path.join(root, d.LABEL_DIR.format(split=split))
            if split == d.TEST_SPLIT and not os.path.isdir(label_dir):
                label_dir = None  # an unlabelled test split is fine; other splits must have labels
            samples = paired_samples(os.path.join(root, d.IMAGE_DIR.format(split=split)), label_dir, d.LABEL_SUFFIX,
                                     strict)
        first_label = next((s.label for s in samples if s.label), None)
        reader = LabelReader(palette, pil_palette=bool(first_label) and is_palette_png(first_label))
        lut = build_label_lut(len(class_names), d.IGNORE_INDEX, mapping)
        super().__init__(samples, class_names, palette, d.IGNORE_INDEX, lut, transform, reader)
        self.root, self.split = root, split
        self.label_histograms: list[dict[int, int]] | None = None
        if (d.CHECK_LABELS if check_labels is None else check_labels) and self.has_labels and strict:
            self.label_histograms = label_histograms([s.label for s in self.samples], reader)
            check_label_values(self, self.label_histograms)


CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                  "Pedestrian", "Bicyclist")
CAMVID_PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
                  (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))


class CamVidDataset(FolderDataset):
    """CamVid, 11 classes at 480x360 (SegNet layout: train/trainannot, val/valannot, test/testannot).

    Label 11 is void and maps to the ignore index. DATASET.CLASS_NAMES / PALETTE / LABEL_MAPPING left
    empty take these values; IMAGE_DIR / LABEL_DIR defaults already match the layout.
    """

    default_classes = CAMVID_CLASSES
    default_palette = CAMVID_PALETTE

    def __init__(self, cfg, split: str, transform: Callable | None = None, check_labels: bool | None = None,
                 strict: bool = True) -> None:
        self.default_mapping = ((11, cfg.DATASET.IGNORE_INDEX),)
        super().__init__(cfg, split, transform, check_labels, strict)
