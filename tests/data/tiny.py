"""Tiny generated datasets, one per name in segkit.data.DATASETS, for the `tiny_dataset` fixture (conftest.py).

Each writer lays out the official folders and file names of its dataset: splits DATASET.TRAIN_SPLIT and VAL_SPLIT
with labels and TEST_SPLIT without (where the dataset has an unlabelled split), two small images each, and
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


def write_image(path: Path, hw: tuple[int, int], rng: np.random.Generator) -> None:
    """A random image (JPEG or PNG by the extension), its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rng.integers(0, 256, (*hw, 3), dtype=np.uint8))


def write_label(path: Path, label: np.ndarray, indexed: bool = False) -> None:
    """A label PNG of `label`'s values: 8-bit grey, or an indexed (palette) PNG as VOC and Mapillary ship."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if indexed:
        from PIL import Image

        im = Image.fromarray(label.astype(np.uint8), mode="P")
        im.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
        im.save(path)
    else:
        assert cv2.imwrite(str(path), label.astype(np.uint16 if label.max() > 255 else np.uint8))


def _pairs(rng, items, values, indexed=False) -> None:
    """Write (image path, label path or None) pairs at the SIZES, labels drawn from `values`."""
    for (image, label), hw in zip(items, SIZES):
        write_image(image, hw, rng)
        if label is not None:
            write_label(label, rng.choice(values, hw), indexed)


SPLITS = ("train", "val", "test")


def _write_cocostuff164k(root: Path) -> CfgNode:
    from segkit.data.cocostuff import EVALUATED_IDS

    rng = np.random.default_rng(3)
    values = np.array([*EVALUATED_IDS[:5], EVALUATED_IDS[-1], 255])
    for split, folder in zip(SPLITS, ("train2017", "val2017", "test2017")):
        _pairs(rng, [(root / "images" / folder / f"0000000{split[:2]}{i}.jpg",
                      None if split == "test" else root / "annotations" / folder / f"0000000{split[:2]}{i}.png")
                     for i in range(2)], values)
    return _base_cfg("cocostuff164k", root)


def _write_cocostuff10k(root: Path) -> CfgNode:
    from scipy.io import savemat

    rng = np.random.default_rng(4)
    (root / "imageLists").mkdir(parents=True)
    (root / "annotations").mkdir()
    for split in ("train", "test"):
        names = [f"COCO_{split}2014_00000000{i}" for i in range(2)]
        (root / "imageLists" / f"{split}.txt").write_text("\n".join(names) + "\n")
        for name, hw in zip(names, SIZES):
            write_image(root / "images" / f"{name}.jpg", hw, rng)
            savemat(root / "annotations" / f"{name}.mat", {"S": rng.choice([0, 1, 2, 13, 182], hw).astype(np.uint8)})
    return _base_cfg("cocostuff10k", root)


def _write_ade20k(root: Path) -> CfgNode:
    rng = np.random.default_rng(5)
    for split, folder in zip(SPLITS, ("training", "validation", "testing")):
        _pairs(rng, [(root / "images" / folder / f"ADE_{split}_0000000{i}.jpg",
                      None if split == "test" else root / "annotations" / folder / f"ADE_{split}_0000000{i}.png")
                     for i in range(2)], np.array([0, 1, 2, 75, 150]))
    return _base_cfg("ade20k", root)


def _write_voc_aug(root: Path) -> CfgNode:
    rng = np.random.default_rng(6)
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split, list_name, label_dir in (("train", "train_aug", "SegmentationClassAug"),
                                        ("val", "val", "SegmentationClass"), ("test", "test", None)):
        ids = [f"2007_00{split[:2]}0{i}" for i in range(2)]
        (lists / f"{list_name}.txt").write_text("\n".join(ids) + "\n")
        _pairs(rng, [(root / "JPEGImages" / f"{i}.jpg", label_dir and root / label_dir / f"{i}.png") for i in ids],
               np.array([0, 1, 15, 20, 255]), indexed=label_dir == "SegmentationClass")
    return _base_cfg("voc_aug", root)


def _write_bdd100k(root: Path) -> CfgNode:
    rng = np.random.default_rng(7)
    for split in SPLITS:
        _pairs(rng, [(root / "images" / "10k" / split / f"7d2f{split}-{i}.jpg",
                      None if split == "test" else root / "labels" / "sem_seg" / "masks" / split / f"7d2f{split}-{i}.png")
                     for i in range(2)], np.array([0, 1, 13, 18, 255]))
    return _base_cfg("bdd100k", root)


def _write_mapillary(root: Path, name: str, version: str) -> CfgNode:
    rng = np.random.default_rng(8)
    from segkit.data.mapillary_tables import TABLES

    last = len(TABLES[version]) - 1  # void--unlabeled
    for split, folder in zip(SPLITS, ("training", "validation", "testing")):
        _pairs(rng, [(root / folder / "images" / f"key{split}{i}.jpg",
                      None if split == "test" else root / folder / version / "labels" / f"key{split}{i}.png")
                     for i in range(2)], np.array([0, 13, last - 1, last]), indexed=True)
    return _base_cfg(name, root)


def _write_kitti(root: Path) -> CfgNode:
    rng = np.random.default_rng(9)
    for folder in ("training", "testing"):
        _pairs(rng, [(root / folder / "image_2" / f"00000{i}_10.png",
                      None if folder == "testing" else root / folder / "semantic" / f"00000{i}_10.png")
                     for i in range(2)], np.array([0, 7, 8, 26, 33]))
    return _base_cfg("kitti", root)


def write_anon(root: Path, subfolders: tuple[str, ...], stem: str, hw: tuple[int, int], labels: np.ndarray | None,
               rng: np.random.Generator) -> None:
    """One ACDC / Dark Zurich sample: rgb_anon/<subfolders>/<stem>_rgb_anon.png and its _gt_labelIds.png."""
    write_image(root.joinpath("rgb_anon", *subfolders, f"{stem}_rgb_anon.png"), hw, rng)
    if labels is not None:
        write_label(root.joinpath("gt", *subfolders, f"{stem}_gt_labelIds.png"), labels)


def _write_acdc(root: Path) -> CfgNode:
    rng = np.random.default_rng(10)
    for split in SPLITS:  # one fog and one night image per split
        for condition, hw in zip(("fog", "night"), SIZES):
            labels = None if split == "test" else rng.choice([0, 7, 11, 26], hw)
            write_anon(root, (condition, split, "GOPR0475"), f"GOPR0475_frame_{split}_{condition}", hw, labels, rng)
    return _base_cfg("acdc", root)


def _write_dark_zurich(root: Path) -> CfgNode:
    rng = np.random.default_rng(11)
    for split in ("train", "val", "test"):
        for i, hw in enumerate(SIZES):
            labels = rng.choice([0, 7, 21, 23], hw) if split == "val" else None
            write_anon(root, (split, "night", "GOPR0356"), f"GOPR0356_frame_{split}{i}", hw, labels, rng)
    cfg = _base_cfg("dark_zurich", root)
    cfg.DATASET.TRAIN_SPLIT = "val"  # the official train split has no labels: fine-tuning reads val
    return cfg


WRITERS: dict[str, Callable[[Path], CfgNode]] = {
    "cityscapes": _write_cityscapes,
    "folder": _write_folder,
    "camvid": _write_camvid,
    "cocostuff164k": _write_cocostuff164k,
    "cocostuff10k": _write_cocostuff10k,
    "ade20k": _write_ade20k,
    "voc_aug": _write_voc_aug,
    "bdd100k": _write_bdd100k,
    "mapillary_v12": lambda root: _write_mapillary(root, "mapillary_v12", "v1.2"),
    "mapillary_v20": lambda root: _write_mapillary(root, "mapillary_v20", "v2.0"),
    "kitti": _write_kitti,
    "acdc": _write_acdc,
    "dark_zurich": _write_dark_zurich,
}


def write_tiny_dataset(name: str, root: Path) -> CfgNode:
    """Write the tiny dataset of registered name `name` at `root`; returns its config."""
    if name not in WRITERS:
        raise KeyError(f"no tiny dataset for the registered dataset {name!r}: add a writer to tests/data/tiny.py")
    return WRITERS[name](root)


def overwrite_label(path: str, label: np.ndarray) -> None:
    """Replace a label file by `label` in the same format (.mat, indexed PNG or plain PNG)."""
    if path.endswith(".mat"):
        from scipy.io import savemat

        savemat(path, {"S": label.astype(np.uint8)})
        return
    from segkit.data.labels import is_palette_png

    write_label(Path(path), label, indexed=is_palette_png(path))
