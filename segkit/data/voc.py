"""Pascal VOC 2012 with the SBD augmented training set (DATASET.NAME voc_aug): 21 classes, 255 ignored.

The VOC2012 devkit as it unpacks, with SegmentationClassAug (the SBD masks as 8-bit PNGs of class ids,
SegmentationClassAug.zip of the DeepLab release, or what mmsegmentation's voc_aug.py writes) and its list
of 10,582 training images beside the official lists:

    ROOT = VOCdevkit/VOC2012
    ROOT/JPEGImages/<id>.jpg
    ROOT/SegmentationClass/<id>.png         (official, indexed PNG: 0..20, 255 boundaries and difficult)
    ROOT/SegmentationClassAug/<id>.png      (0..20, 255)
    ROOT/ImageSets/Segmentation/{train,val,trainval,test}.txt
    ROOT/ImageSets/Segmentation/train_aug.txt   (or mmsegmentation's aug.txt: the same 10,582 ids)

Split 'train' reads train_aug with SegmentationClassAug; the official lists (train, val, trainval) read
SegmentationClass; test (VOC2012 test download) has no labels. val (1,449) is what papers report.
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
AUG_LISTS = ("train_aug", "aug")  # the DeepLab name and mmsegmentation's


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
        label_dir = "SegmentationClass"
        if folder in AUG_LISTS:
            label_dir = "SegmentationClassAug"
            folder = next((n for n in AUG_LISTS if os.path.isfile(os.path.join(lists, f"{n}.txt"))), folder)
        labels = None if folder == "test" else os.path.join(root, label_dir, "{id}.png")
        return list_pairs(os.path.join(lists, f"{folder}.txt"), os.path.join(root, "JPEGImages", "{id}.jpg"),
                          labels, strict)

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return voc_table(cfg.DATASET.IGNORE_INDEX)
