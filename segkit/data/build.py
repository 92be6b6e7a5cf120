"""Datasets and loaders from a config: one interface for every dataset."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from yacs.config import CfgNode

from ..utils.comm import get_rank, get_world_size, per_process_batch
from .base import SegDataset, display_palette
from .acdc import ACDCDataset
from .ade20k import ADE20KDataset
from .bdd100k import BDD100KDataset
from .camvid import CamVidDataset
from .cityscapes import CityscapesDataset
from .cocostuff import CocoStuff10kDataset, CocoStuff164kDataset
from .dark_zurich import DarkZurichDataset
from .demo import ensure_demo_dataset
from .folder import FolderDataset
from .kitti import KITTIDataset
from .mapillary import MapillaryV12Dataset, MapillaryV20Dataset
from .samplers import InferenceSampler, SeededItems, TrainingSampler
from .seg_transforms import SegEvalTransform, SegTrainTransform
from .voc import VOCAugDataset
from .subset import restrict_to_subset

logger = logging.getLogger("segkit")
_capped: set[tuple[int, int]] = set()

# DATASET.NAME -> class(cfg, split, transform=None, check_labels=None, strict=True): the one place a dataset
# is registered. Each is a SegDataset and sets its contract (segkit/data/base.py); the tests run over this dict.
DATASETS: dict[str, type[SegDataset]] = {
    "cityscapes": CityscapesDataset,
    "folder": FolderDataset,
    "camvid": CamVidDataset,
    "cocostuff164k": CocoStuff164kDataset,
    "cocostuff10k": CocoStuff10kDataset,
    "ade20k": ADE20KDataset,
    "voc_aug": VOCAugDataset,
    "bdd100k": BDD100KDataset,
    "mapillary_v12": MapillaryV12Dataset,
    "mapillary_v20": MapillaryV20Dataset,
    "kitti": KITTIDataset,
    "acdc": ACDCDataset,
    "dark_zurich": DarkZurichDataset,
}


def _dataset_class(cfg) -> type[SegDataset]:
    name = cfg.DATASET.NAME
    if name not in DATASETS:
        raise KeyError(f"unknown DATASET.NAME {name!r}; known: {sorted(DATASETS)}")
    if cfg.DATASET.LIST_FILE and not issubclass(DATASETS[name], FolderDataset):
        # The official datasets find their own files; a list they would ignore is refused, not ignored.
        folder_like = sorted(n for n, c in DATASETS.items() if issubclass(c, FolderDataset))
        raise ValueError(f"DATASET.LIST_FILE ({cfg.DATASET.LIST_FILE}) applies to the datasets {folder_like}; "
                         f"DATASET.NAME {name!r} finds its own files: leave DATASET.LIST_FILE empty")
    return DATASETS[name]


def split_parts(split: str) -> list[str]:
    """The splits a name joins with '+' ("train+val": both, in that order, as one dataset); an empty part
    or one named twice is an error naming the split."""
    parts = split.split("+")
    if not all(parts) or len(set(parts)) != len(parts):
        raise ValueError(f"split {split!r}: join distinct split names with '+', e.g. 'train+val'")
    return parts


def build_dataset(cfg: CfgNode, split: str, train: bool | None = None, check_labels: bool | None = None,
                  strict: bool = True) -> SegDataset:
    """The split of DATASET.NAME with train transforms when `train` (default: split is the training split).
    Splits joined with '+' ("train+val", how the published CamVid models train) are one dataset.

    `check_labels` overrides DATASET.CHECK_LABELS; `strict=False` (tools/check_dataset.py) keeps images
    without a label (label None) and skips the value check, so that a scan can report every problem.
    A config with DATASET.GENERATE_DEMO generates its demo set here on first use (once across processes).
    The training split built for training keeps only DATASET.TRAIN_SUBSET of its samples when that is set
    (segkit/data/subset.py).
    """
    dataset_class = _dataset_class(cfg)
    ensure_demo_dataset(cfg)
    if train is None:
        train = split == cfg.DATASET.TRAIN_SPLIT
    transform = (SegTrainTransform.from_config(cfg) if train else SegEvalTransform.from_config(cfg))
    parts = split_parts(split)
    dataset = dataset_class(cfg, parts[0], transform=transform, check_labels=check_labels, strict=strict)
    for part in parts[1:]:
        dataset.join(dataset_class(cfg, part, transform=transform, check_labels=check_labels, strict=strict))
    dataset.split = split
    if train and split == cfg.DATASET.TRAIN_SPLIT and cfg.DATASET.TRAIN_SUBSET:
        restrict_to_subset(dataset, cfg.DATASET.TRAIN_SUBSET, cfg.DATASET.TRAIN_SUBSET_SEED)
    return dataset


def dataset_title(name: str) -> str:
    """How reports name the dataset registered as `name` (the registered name where it declares none)."""
    return getattr(DATASETS.get(name), "title", "") or name


def check_num_classes(cfg: CfgNode, dataset: SegDataset) -> None:
    """MODEL.NUM_CLASSES must be the dataset's class count: an error naming both, and the value to set."""
    if cfg.MODEL.NUM_CLASSES != dataset.num_classes:
        raise ValueError(f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES} but dataset '{cfg.DATASET.NAME}' at "
                         f"{cfg.DATASET.ROOT} has {dataset.num_classes} classes; set MODEL.NUM_CLASSES "
                         f"{dataset.num_classes}")


def dataset_classes(cfg: CfgNode) -> tuple[list[str], list[tuple[int, int, int]]]:
    """(class names, export palette) of DATASET.NAME from the config alone: the dataset's files are not needed."""
    names, palette = _dataset_class(cfg).declared_classes(cfg)
    return names, display_palette(palette, len(names))


def worker_init_fn(worker_id: int) -> None:
    # torch seeds python and torch per worker, not numpy, which the transforms draw from.
    np.random.seed(torch.initial_seed() % 2**32)
    # Parallelism comes from the workers; OpenCV's own thread pool in each would oversubscribe the cores.
    cv2.setNumThreads(1)
    # Ctrl-C, and a scheduler's SIGTERM / SIGUSR1, may reach the whole process group: the trainer then saves
    # the current iteration and stops (segkit.engine.preemption), and its workers must live until then.
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)


def collate(batch: list[dict]) -> dict:
    """Tensors stacked, anything else listed, key by key: a dataset may yield more than the four contract
    keys (e.g. instance maps) and the evaluation loop hands them on."""
    return {k: torch.stack([b[k] for b in batch]) if isinstance(batch[0][k], torch.Tensor) else [b[k] for b in batch]
            for k in batch[0]}


def usable_workers(requested: int, key: str = "DATALOADER.NUM_WORKERS") -> int:
    """`requested` loader workers, capped at the CPUs this process may run on (said once, naming `key`).

    More workers than CPUs only compete for them; torch would warn about it on every loader instead.
    """
    if requested < 0:
        raise ValueError(f"{key} must be >= 0, got {requested}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if requested <= cpus:
        return requested
    if (requested, cpus) not in _capped:
        _capped.add((requested, cpus))
        logger.info("%s %d capped at %d: this process may use %d CPUs", key, requested, cpus, cpus)
    return cpus


def worker_kwargs(requested: int, key: str = "DATALOADER.NUM_WORKERS") -> dict:
    """DataLoader arguments for `requested` workers: the number `usable_workers` allows and how to start them.

    A worker forked from a process whose OpenCV thread pool has run (demo generation, label scan, an earlier
    loader) deadlocks in its first OpenCV call: workers start from a clean forkserver instead."""
    workers = usable_workers(requested, key)
    if workers == 0:
        return {"num_workers": 0}
    return {"num_workers": workers,
            "multiprocessing_context": "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"}


def _loader_kwargs(cfg) -> dict:
    kw = worker_kwargs(cfg.DATALOADER.NUM_WORKERS)
    return dict(kw, pin_memory=bool(cfg.DATALOADER.PIN_MEMORY) and torch.cuda.is_available(), collate_fn=collate,
                worker_init_fn=worker_init_fn, persistent_workers=kw["num_workers"] > 0)


def build_train_loader(cfg: CfgNode, dataset: Dataset | None = None, start_iter: int = 0, ims_per_batch: int = 0,
                       seed: int | None = None, batch_key: str = "SOLVER.IMS_PER_BATCH") -> Iterator[dict]:
    """Endless iterator of batches of SOLVER.IMS_PER_BATCH (or `ims_per_batch`, named `batch_key` in errors;
    all processes together) // world size, seeded (SEED, or `seed` for a second stream) and sharded by rank.

    The batches are a function of (seed, world size, iteration) only: `start_iter` (iterations already
    done) starts the stream where a resumed run left it, augmentation included, whatever NUM_WORKERS."""
    dataset = dataset if dataset is not None else build_dataset(cfg, cfg.DATASET.TRAIN_SPLIT, train=True)
    return iteration_batches(dataset, ims_per_batch or cfg.SOLVER.IMS_PER_BATCH, cfg.SEED if seed is None else int(seed),
                             start_iter, batch_key=batch_key, **_loader_kwargs(cfg))


def iteration_batches(dataset: Dataset, global_batch: int, seed: int, start_iter: int = 0,
                      batch_key: str = "SOLVER.IMS_PER_BATCH", **loader_kwargs) -> Iterator:
    """The training data rule of both pipelines: an endless stream of this rank's batches of
    `global_batch // world size`, iteration k the same whether or not a run was interrupted before it.

    One shuffled stream of indices shared by all ranks (rank r takes every world-th), started at
    `start_iter x global_batch`; every item's augmentation is seeded from its stream position
    (`SeededItems`), so neither the worker that loads it nor what was drawn before changes it."""
    world, rank = get_world_size(), get_rank()
    batch = per_process_batch(global_batch, batch_key)  # an uneven split is an error naming the key
    sampler = TrainingSampler(len(dataset), shuffle=True, seed=seed, rank=rank, world_size=world,
                              start=start_iter * global_batch, with_seeds=True)
    generator = torch.Generator()
    generator.manual_seed(seed + rank)  # distinct, reproducible worker seeds per rank
    loader = DataLoader(SeededItems(dataset), batch_size=batch, sampler=sampler, drop_last=True,
                        generator=generator, **loader_kwargs)
    return iter(loader)


def build_test_loader(cfg: CfgNode, split: str | None = None, dataset: Dataset | None = None) -> DataLoader:
    """Batch-1 loader over this rank's shard (indices rank::world) of the split, eval transforms."""
    split = split or cfg.DATASET.VAL_SPLIT
    dataset = dataset if dataset is not None else build_dataset(cfg, split, train=False)
    sampler = InferenceSampler(len(dataset), get_rank(), get_world_size())
    kw = _loader_kwargs(cfg)
    kw["num_workers"] = min(kw["num_workers"], 2)  # full-size images: a few workers keep up with inference
    kw["persistent_workers"] = False
    return DataLoader(dataset, batch_size=1, sampler=sampler, **kw)
