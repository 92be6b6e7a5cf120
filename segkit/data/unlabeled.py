"""Images without labels for semi-supervised training: a weak and a strong view of the same crop.

The weak view is the training geometry of the labelled data (random scale, crop, flip: SegTrainTransform's)
without colour jitter; the strong view is the same crop after photometric perturbations only (colour jitter,
greyscale, Gaussian blur, with UniMatch's probabilities), so the two stay pixel-aligned and the teacher's
pseudo-labels on the weak view supervise the student on the strong one pixel for pixel. CutMix between
unlabelled images needs the teacher's predictions and is applied on the batch (segkit.engine.semi).

DATASET.UNLABELED names the images: "train_rest" (the training split outside DATASET.TRAIN_SUBSET),
"split:NAME" (the images of split NAME of DATASET.NAME; its labels, if any, are not read) or a folder, whose
sub-folders are searched too (another dataset's split, e.g. Cityscapes' leftImg8bit/train_extra with its
city folders).
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from yacs.config import CfgNode

from .base import Sample, read_image
from .build import build_dataset, build_train_loader, split_parts
from .seg_transforms import SegTrainTransform, jitter_colours, normalise
from .subset import split_samples

# UniMatch's strong view: ColorJitter(0.5, 0.5, 0.5, 0.25) with p 0.8 (no hue here: segkit's jitter has none),
# RandomGrayscale p 0.2, Gaussian blur p 0.5 with sigma in [0.1, 2.0].
STRONG_JITTER, STRONG_JITTER_PROB, GREY_PROB, BLUR_PROB, BLUR_SIGMA = 0.5, 0.8, 0.2, 0.5, (0.1, 2.0)


def strong_photometric(img: np.ndarray) -> np.ndarray:
    """Colour jitter, greyscale and Gaussian blur of a BGR uint8 crop, each with its probability; no geometry."""
    if np.random.random() < STRONG_JITTER_PROB:
        b, c, s = np.random.uniform(1 - STRONG_JITTER, 1 + STRONG_JITTER, size=3)
        img = jitter_colours(img, b, c, s)
    if np.random.random() < GREY_PROB:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if np.random.random() < BLUR_PROB:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(np.random.uniform(*BLUR_SIGMA)))
    return img


class UnlabeledTransform:
    """image -> (weak view, strong view, valid mask): one crop, two normalisations; `valid` is False on the
    padding that a crop larger than the rescaled image adds (no pseudo-label counts there)."""

    def __init__(self, geometry: SegTrainTransform) -> None:
        self.geometry = geometry

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        inside = np.zeros(image.shape[:2], dtype=np.uint8)  # padding becomes the ignore index
        crop, mask = self.geometry.geometry(image, inside, balance=False)
        luts = self.geometry.luts
        return normalise(crop, luts), normalise(strong_photometric(crop), luts), mask != self.geometry.ignore_index


class UnlabeledDataset(Dataset):
    """Items {"image": weak view, "image_strong": strong view, "valid": bool [H,W], "name", "path"}."""

    def __init__(self, samples: list[Sample], transform: UnlabeledTransform) -> None:
        if not samples:
            raise ValueError("DATASET.UNLABELED names no images")
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        weak, strong, valid = self.transform(read_image(sample.image))
        return {"image": torch.from_numpy(weak), "image_strong": torch.from_numpy(strong),
                "valid": torch.from_numpy(valid), "name": sample.name, "path": sample.image}


def unlabeled_samples(cfg: CfgNode) -> list[Sample]:
    """The images DATASET.UNLABELED names (see the module docstring), labels dropped."""
    spec = cfg.DATASET.UNLABELED
    if not spec:
        raise ValueError("SEMI.ENABLED needs DATASET.UNLABELED: 'train_rest', 'split:NAME' or a folder of images")
    if spec == "train_rest":
        if not cfg.DATASET.TRAIN_SUBSET:
            raise ValueError("DATASET.UNLABELED 'train_rest' needs DATASET.TRAIN_SUBSET in (0, 1): the rest of what?")
        whole = build_dataset(cfg, cfg.DATASET.TRAIN_SPLIT, train=False, check_labels=False)
        return [Sample(s.image, None, s.name) for s in split_samples(whole.samples, cfg.DATASET.TRAIN_SUBSET, cfg.DATASET.TRAIN_SUBSET_SEED)[1]]
    if spec.startswith("split:"):
        split = spec[len("split:"):]
        shared = set(split_parts(split)) & set(split_parts(cfg.DATASET.TRAIN_SPLIT))
        if shared and cfg.DATASET.TRAIN_SUBSET:
            raise ValueError(f"DATASET.UNLABELED '{spec}' would feed the labelled subset's images again (split "
                             f"{', '.join(sorted(shared))} is in DATASET.TRAIN_SPLIT {cfg.DATASET.TRAIN_SPLIT!r}); "
                             "use 'train_rest'")
        found = build_dataset(cfg, split, train=False, check_labels=False, strict=False)
        return [Sample(s.image, None, s.name) for s in found.samples]
    if not os.path.isdir(spec):
        raise FileNotFoundError(f"DATASET.UNLABELED {spec!r} is neither 'train_rest', 'split:NAME' nor a folder")
    return images_under(spec)


def images_under(folder: str) -> list[Sample]:
    """Every image OpenCV can decode in `folder` and its sub-folders, in sorted path order."""
    found = [os.path.join(d, f) for d, subdirs, files in sorted(os.walk(folder)) for f in sorted(files)]
    samples = [Sample(p, None, os.path.splitext(os.path.basename(p))[0]) for p in found if cv2.haveImageReader(p)]
    if not samples:
        raise FileNotFoundError(f"DATASET.UNLABELED: no images OpenCV can read in {folder} or its sub-folders")
    return samples


def build_unlabeled_dataset(cfg: CfgNode) -> UnlabeledDataset:
    """The unlabelled images of the config with the labelled data's training geometry."""
    return UnlabeledDataset(unlabeled_samples(cfg), UnlabeledTransform(SegTrainTransform.from_config(cfg)))


# The unlabelled stream draws its order and augmentation from SEED + this, apart from the labelled stream's.
UNLABELED_SEED_OFFSET = 1_000_003


def build_unlabeled_loader(cfg: CfgNode, dataset: UnlabeledDataset, start_iter: int = 0):
    """Endless batches of SEMI.IMS_PER_BATCH (0: SOLVER.IMS_PER_BATCH) unlabelled images, resumable like the
    labelled stream (segkit.data.build_train_loader) and seeded apart from it."""
    return build_train_loader(cfg, dataset, start_iter, ims_per_batch=cfg.SEMI.IMS_PER_BATCH,
                              seed=cfg.SEED + UNLABELED_SEED_OFFSET,
                              batch_key="SEMI.IMS_PER_BATCH" if cfg.SEMI.IMS_PER_BATCH else "SOLVER.IMS_PER_BATCH")
