"""KITTI semantic segmentation (Alhaija et al., IJCV 2018), data_semantics.zip as it unpacks:

    ROOT/training/image_2/<n>_10.png      200 images, about 1242x375
    ROOT/training/semantic/<n>_10.png     Cityscapes label ids
    ROOT/testing/image_2/<n>_10.png       200 images, no labels

KITTI has no validation split: 'train' and 'val' both read the 200 labelled training images (what
Cityscapes -> KITTI evaluation reports), 'test' the testing images. Classes, label ids and the labelIds
export for the benchmark are Cityscapes'.
"""
from __future__ import annotations

import os

import numpy as np
from yacs.config import CfgNode

from .base import Sample
from .cityscapes import CLASS_NAMES, PALETTE, label_id_table, train_id_to_label_id
from .official import OfficialDataset, find_pairs


class KITTIDataset(OfficialDataset):
    """DATASET.NAME 'kitti': splits train and val (training/), test (testing/, no labels)."""

    title = "KITTI semantic"
    default_classes = CLASS_NAMES
    default_palette = PALETTE
    split_dirs = {"train": "training", "val": "training", "test": "testing"}
    export_table = staticmethod(train_id_to_label_id)

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        root = cfg.DATASET.ROOT
        labels = None if folder == "testing" else os.path.join(root, folder, "semantic")
        return find_pairs(os.path.join(root, folder, "image_2"), ".png", labels, ".png", strict)

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return label_id_table(cfg.DATASET.IGNORE_INDEX)
