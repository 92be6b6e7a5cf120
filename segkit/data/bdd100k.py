"""BDD100K semantic segmentation (Yu et al., CVPR 2020), the 10K images as bdd100k_images_10k.zip and
bdd100k_sem_seg_labels_trainval.zip unpack (one folder, bdd100k/):

    ROOT/images/10k/{train,val,test}/<name>.jpg           7,000 / 1,000 / 2,000 images, 1280x720
    ROOT/labels/sem_seg/masks/{train,val}/<name>.png      Cityscapes train ids 0..18, 255 ignored

The classes are Cityscapes' 19, so a Cityscapes model is evaluated here directly (tools/evaluate.py).
"""
from __future__ import annotations

import os

import numpy as np
from yacs.config import CfgNode

from .base import Sample
from .cityscapes import CLASS_NAMES, PALETTE, train_id_table
from .official import OfficialDataset, find_pairs


class BDD100KDataset(OfficialDataset):
    """DATASET.NAME 'bdd100k': splits train, val and test (no labels)."""

    title = "BDD100K"
    default_classes = CLASS_NAMES
    default_palette = PALETTE

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        root = cfg.DATASET.ROOT
        labels = None if folder == "test" else os.path.join(root, "labels", "sem_seg", "masks", folder)
        return find_pairs(os.path.join(root, "images", "10k", folder), ".jpg", labels, ".png", strict)

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return train_id_table(cfg.DATASET.IGNORE_INDEX)
