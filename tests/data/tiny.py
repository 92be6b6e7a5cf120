"""Tiny generated datasets, one per name in segkit.data.DATASETS, for the `tiny_dataset` fixture (conftest.py).

Each writer lays out splits "train" and "val" with labels and "test" without, a few small images each, and
returns the config that reads them. A newly registered dataset adds its writer to WRITERS.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from yacs.config import CfgNode

from segkit.config import get_cfg
from segkit.data import generate_demo_dataset

SIZES = ((24, 32), (20, 36))  # (height, width) of the images of each split: sizes differ per image


def _base_cfg(name: str, root: Path) -> CfgNode:
    cfg = get_cfg()
    cfg.DATASET.NAME = name
    cfg.DATASET.ROOT = str(root)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.CROP_SIZE = [16, 16]
    cfg.SOLVER.IMS_PER_BATCH = 2
    return cfg


def _write_cityscapes(root: Path) -> CfgNode:
    # The demo generator writes the Cityscapes layout: this also covers the demo set.
    generate_demo_dataset(str(root), (32, 64), num_train=2, num_val=2, seed=0, workers=1)
    shutil.copytree(root / "leftImg8bit" / "val", root / "leftImg8bit" / "test")  # images only, as on the benchmark
    return _base_cfg("cityscapes", root)


def _write_pairs(root: Path, values: np.ndarray, seed: int) -> None:
    """SegNet-style folders {split}/ and {split}annot/ (none for test); labels drawn from `values`."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val", "test"):
        os.makedirs(root / split)
        if split != "test":
            os.makedirs(root / f"{split}annot")
        for i, (h, w) in enumerate(SIZES):
            stem = f"{split}_{i:03d}"
            assert cv2.imwrite(str(root / split / f"{stem}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            if split != "test":
                label = rng.choice(values, (h, w)).astype(np.uint8)
                assert cv2.imwrite(str(root / f"{split}annot" / f"{stem}.png"), label)


def _write_folder(root: Path) -> CfgNode:
    _write_pairs(root, np.array([0, 1, 2, 255]), seed=1)
    cfg = _base_cfg("folder", root)
    cfg.DATASET.CLASS_NAMES = ["ground", "object", "background"]
    return cfg


def _write_camvid(root: Path) -> CfgNode:
    _write_pairs(root, np.arange(12), seed=2)  # 11 classes and the void value 11
    return _base_cfg("camvid", root)


WRITERS: dict[str, Callable[[Path], CfgNode]] = {
    "cityscapes": _write_cityscapes,
    "folder": _write_folder,
    "camvid": _write_camvid,
}


def write_tiny_dataset(name: str, root: Path) -> CfgNode:
    """Write the tiny dataset of registered name `name` at `root`; returns its config."""
    if name not in WRITERS:
        raise KeyError(f"no tiny dataset for the registered dataset {name!r}: add a writer to tests/data/tiny.py")
    return WRITERS[name](root)
