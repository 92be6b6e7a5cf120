"""A procedural ImageFolder set for the pretraining demo and tests: shapes and textures, one per class.

Every image has a random background colour with noise, a contrasting foreground colour, and a random
position, size and rotation, so the class is carried by shape or texture alone: a small CNN learns it
in minutes while chance stays at 1 / num_classes.
"""
from __future__ import annotations

import logging
import os
from typing import Sequence

import cv2
import numpy as np
from yacs.config import CfgNode

from ..utils.io import build_folder_once

DEMO_CLASSES = (
    "circle", "square", "triangle", "cross", "ring",
    "hstripes", "vstripes", "checker", "diagonal", "dots",
)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    bg = rng.integers(0, 256, 3)
    fg = rng.integers(0, 256, 3)
    while np.abs(fg.astype(int) - bg).sum() < 200:  # keep the shape visible against its background
        fg = rng.integers(0, 256, 3)
    return bg, fg


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of a periodic texture over the whole image."""
    period = int(rng.integers(max(4, size // 10), max(6, size // 4)))
    phase = int(rng.integers(0, period))
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "hstripes":
        return ((yy + phase) % period) < period // 2
    if kind == "vstripes":
        return ((xx + phase) % period) < period // 2
    if kind == "diagonal":
        return ((xx + yy + phase) % period) < period // 2
    if kind == "checker":
        return (((xx + phase) // (period // 2 + 1)) + ((yy + phase) // (period // 2 + 1))) % 2 == 0
    # dots: a grid of small discs
    r = max(1, period // 4)
    return (((xx + phase) % period - period // 2) ** 2 + ((yy + phase) % period - period // 2) ** 2) <= r * r


def _shape(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of one shape at a random place, size and rotation."""
    mask = np.zeros((size, size), np.uint8)
    r = int(rng.integers(size // 6, size // 3 + 1))
    cx, cy = (int(v) for v in rng.integers(r, size - r + 1, 2))
    angle = float(rng.uniform(0, 2 * np.pi))
    thick = max(2, r // 3)
    if kind == "circle":
        cv2.circle(mask, (cx, cy), r, 1, -1)
    elif kind == "ring":
        cv2.circle(mask, (cx, cy), r, 1, thick)
    elif kind in ("square", "triangle"):
        n = 4 if kind == "square" else 3
        pts = [(cx + r * np.cos(angle + 2 * np.pi * k / n), cy + r * np.sin(angle + 2 * np.pi * k / n)) for k in range(n)]
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    elif kind == "cross":
        for a in (angle, angle + np.pi / 2):
            dx, dy = r * np.cos(a), r * np.sin(a)
            cv2.line(mask, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1, thick)
    else:
        raise ValueError(f"unknown demo shape '{kind}'")
    return mask.astype(bool)


def render_demo_image(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One RGB uint8 image [size, size, 3] of class `kind`."""
    bg, fg = _colours(rng)
    mask = _shape(kind, size, rng) if kind in DEMO_CLASSES[:5] else _texture(kind, size, rng)
    img = np.where(mask[:, :, None], fg, bg).astype(np.float32)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_demo_cls_dataset(
    root: str,
    num_classes: int = 10,
    train_per_class: int = 60,
    val_per_class: int = 20,
    size: int = 72,
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> str:
    """Write `root/{train,val}/<class>/<n>.jpg` (every 7th image as PNG to exercise both decoders); returns root.

    `classes` picks kinds from DEMO_CLASSES by name; default: the first `num_classes`.
    """
    if classes is None:
        if not 2 <= num_classes <= len(DEMO_CLASSES):
            raise ValueError(f"demo classes must be in 2..{len(DEMO_CLASSES)}, got {num_classes}")
        classes = DEMO_CLASSES[:num_classes]
    unknown = [c for c in classes if c not in DEMO_CLASSES]
    if unknown or len(classes) < 2:
        raise ValueError(f"demo classes must be >= 2 of {DEMO_CLASSES}, got {list(classes)}")
    if size < 16:
        raise ValueError(f"demo image size must be >= 16, got {size}")
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for kind in classes:
            folder = os.path.join(root, split, kind)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                rgb = render_demo_image(kind, size, rng)
                ext = ".png" if i % 7 == 6 else ".jpg"
                path = os.path.join(folder, f"{i:05d}{ext}")
                if not cv2.imwrite(path, rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92] if ext == ".jpg" else []):
                    raise OSError(f"cannot write {path}")
    return root


def demo_cls_exists(root: str) -> bool:
    return os.path.isdir(os.path.join(root, "train")) and os.path.isdir(os.path.join(root, "val"))


def write_demo_cls_dataset(cfg: CfgNode, root: str) -> str:
    """Write at `root` the demo set the config describes: DATASET.DEMO_* sizes, seeded by SEED. The one
    reading of those keys, shared by `ensure_demo_cls_dataset` and tools/make_demo_cls_data.py."""
    ds = cfg.DATASET
    return make_demo_cls_dataset(root, ds.DEMO_NUM_CLASSES, ds.DEMO_TRAIN_PER_CLASS, ds.DEMO_VAL_PER_CLASS,
                                 ds.DEMO_SIZE, seed=cfg.SEED)


def ensure_demo_cls_dataset(cfg: CfgNode) -> None:
    """Generate the demo set at DATASET.ROOT when DATASET.GENERATE_DEMO asks and it is missing.

    `build_cls_dataset` calls it, so the demo set generates itself on first use; processes building it
    together take a file lock beside ROOT, so one writes and the others find the finished folder.
    An existing ROOT without train/ and val/ (an empty folder the user made) is filled.
    """
    ds = cfg.DATASET
    if not ds.GENERATE_DEMO:
        return

    def build(folder: str) -> None:
        logging.getLogger("segkit").info("generating the demo classification set at %s", ds.ROOT)
        write_demo_cls_dataset(cfg, folder)

    build_folder_once(ds.ROOT, build, complete=demo_cls_exists)
