"""ACDC, the Adverse Conditions Dataset with Correspondences (Sakaridis et al., ICCV 2021), as
rgb_anon_trainvaltest.zip and gt_trainval.zip unpack into one folder:

    ROOT/rgb_anon/<condition>/<split>/<sequence>/<name>_rgb_anon.png
    ROOT/gt/<condition>/<split>/<sequence>/<name>_gt_labelIds.png        Cityscapes label ids

Conditions fog, night, rain and snow (DATASET.CONDITIONS picks some; empty: all present), splits train, val
and test (no labels; 1,600 / 406 / 2,000 images over the four). The reference images (<split>_ref/) are
not read. Classes are Cityscapes', so a Cityscapes model is evaluated directly; the evaluation reports
each condition as well as the whole split (`groups`).
"""
from __future__ import annotations

import os

import numpy as np
from yacs.config import CfgNode

from .base import Sample
from .cityscapes import CLASS_NAMES, PALETTE, label_id_table, train_id_to_label_id
from .official import OfficialDataset, find_pairs

CONDITIONS = ("fog", "night", "rain", "snow")
IMAGE_SUFFIX = "_rgb_anon.png"
LABEL_SUFFIX = "_gt_labelIds.png"


def anon_pairs(root: str, subfolders: tuple[str, ...], labelled: bool, strict: bool) -> list[Sample]:
    """ACDC / Dark Zurich pairs: rgb_anon/<subfolders>/**/*_rgb_anon.png with gt/<subfolders>/**/*_gt_labelIds.png."""
    labels = os.path.join(root, "gt", *subfolders) if labelled else None
    return find_pairs(os.path.join(root, "rgb_anon", *subfolders), IMAGE_SUFFIX, labels, LABEL_SUFFIX, strict)


class CityscapesIdsDataset(OfficialDataset):
    """Cityscapes classes stored as Cityscapes label ids, exported as label ids (ACDC, Dark Zurich)."""

    default_classes = CLASS_NAMES
    default_palette = PALETTE
    export_table = staticmethod(train_id_to_label_id)
    unlabelled_splits = ("test",)

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return label_id_table(cfg.DATASET.IGNORE_INDEX)


def selected_conditions(cfg: CfgNode) -> list[str]:
    """DATASET.CONDITIONS, or when empty every condition of the download under ROOT/rgb_anon/."""
    present = [c for c in CONDITIONS if os.path.isdir(os.path.join(cfg.DATASET.ROOT, "rgb_anon", c))]
    if not cfg.DATASET.CONDITIONS and not present:
        raise FileNotFoundError(f"no ACDC condition folder ({', '.join(CONDITIONS)}) under "
                                f"{os.path.join(cfg.DATASET.ROOT, 'rgb_anon')}")
    chosen = list(cfg.DATASET.CONDITIONS) or present
    unknown = [c for c in chosen if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"DATASET.CONDITIONS {unknown} are not ACDC conditions {list(CONDITIONS)}")
    return chosen


class ACDCDataset(CityscapesIdsDataset):
    """DATASET.NAME 'acdc': splits train, val, test (no labels); `groups` holds each image's condition."""

    title = "ACDC"
    group_key = "condition"

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        samples, self._conditions = [], []
        for condition in selected_conditions(cfg):
            found = anon_pairs(cfg.DATASET.ROOT, (condition, folder), folder not in self.unlabelled_splits, strict)
            samples += found
            self._conditions += [condition] * len(found)
        return samples

    def sample_groups(self, cfg: CfgNode) -> list[str] | None:
        return self._conditions
