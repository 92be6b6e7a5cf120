"""Pascal VOC 2012 with the SBD augmented training set (DATASET.NAME voc_aug): 21 classes, 255 ignored.

The VOC2012 devkit as it unpacks, with SegmentationClassAug (the SBD masks as 8-bit PNGs of class ids,
SegmentationClassAug.zip of the DeepLab release, or what mmsegmentation's voc_aug.py writes) and a list
of the augmented training images beside the official lists:

    ROOT = VOCdevkit/VOC2012
    ROOT/JPEGImages/<id>.jpg
    ROOT/SegmentationClass/<id>.png         (official, indexed PNG: 0..20, 255 boundaries and difficult)
    ROOT/SegmentationClassAug/<id>.png      (0..20, 255)
    ROOT/ImageSets/Segmentation/{train,val,trainval,test}.txt
    ROOT/ImageSets/Segmentation/train_aug.txt   (DeepLab's 10,582 ids), or
    ROOT/ImageSets/Segmentation/aug.txt         (mmsegmentation's: the 9,118 SBD ids outside VOC train and val)

Split 'train' is the 10,582 images: train_aug with SegmentationClassAug, or, where only mmsegmentation's
lists are, aug.txt with SegmentationClassAug plus the official train.txt (1,464) with SegmentationClass, as
mmsegmentation's own config joins them. The official lists (train, val, trainval) read SegmentationClass;
test (VOC2012 test download) has no labels. val (1,449) is what papers report.
"""
from __future__ import annotations

import os

import numpy as np
from yacs.config import CfgNode

from .base import Sample
from .official import OfficialDataset, bitwise_palette, list_pairs, value_table

CLASS_NAMES: list[str] = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]
PALETTE = bitwise_palette(len(CLASS_NAMES))  # the devkit's colour map: background black
BOUNDARY = 255  # object boundaries and difficult regions, ignored
AUG_LIST = "train_aug"  # DeepLab's list of all 10,582
MMSEG_AUG_LIST = "aug"  # mmsegmentation's: the SBD images outside VOC train and val, joined with train


def voc_table(ignore_index: int = 255) -> np.ndarray:
    """Stored 0..20 -> themselves, 255 ignored, anything else unknown."""
    return value_table({v: v for v in range(len(CLASS_NAMES))}, [BOUNDARY], ignore_index)


class VOCAugDataset(OfficialDataset):
    """DATASET.NAME 'voc_aug': splits train (train_aug), val, trainval and test (no labels)."""

    title = "Pascal VOC 2012"
    default_classes = CLASS_NAMES
    default_palette = PALETTE
    split_dirs = {"train": "train_aug"}
    indexed_labels = True

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        root = cfg.DATASET.ROOT
        lists = os.path.join(root, "ImageSets", "Segmentation")

        def listed(name: str, label_dir: str | None) -> list[Sample]:
            labels = None if label_dir is None else os.path.join(root, label_dir, "{id}.png")
            return list_pairs(os.path.join(lists, f"{name}.txt"), os.path.join(root, "JPEGImages", "{id}.jpg"),
                              labels, strict)

        if folder == AUG_LIST and not os.path.isfile(os.path.join(lists, f"{AUG_LIST}.txt")) \
                and os.path.isfile(os.path.join(lists, f"{MMSEG_AUG_LIST}.txt")):
            return listed("train", "SegmentationClass") + listed(MMSEG_AUG_LIST, "SegmentationClassAug")
        if folder in (AUG_LIST, MMSEG_AUG_LIST):
            return listed(folder, "SegmentationClassAug")
        return listed(folder, None if folder == "test" else "SegmentationClass")

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return voc_table(cfg.DATASET.IGNORE_INDEX)
