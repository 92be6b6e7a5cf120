"""ADE20K SceneParsing (Zhou et al., CVPR 2017): 150 classes, ADEChallengeData2016.zip as it unpacks.

    ROOT/images/{training,validation}/ADE_{train,val}_<n>.jpg
    ROOT/annotations/{training,validation}/ADE_{train,val}_<n>.png     0 = other (ignored), 1..150
    ROOT/images/testing/ADE_test_<n>.jpg        (release_test.zip's testing/, optional, no labels)

Label 0 ("other objects") is ignored and 1..150 become train ids 0..149, the benchmark's convention
(mmsegmentation's reduce_zero_label, CoinCheung/BiSeNet's lb_map). 20,210 training and 2,000 validation
images; validation is what papers report.
"""
from __future__ import annotations

import os

import numpy as np
from yacs.config import CfgNode

from .base import Sample
from .official import OfficialDataset, bitwise_palette, find_pairs, value_table

# objectInfo150 of the benchmark, in label order 1..150 (first name of each entry).
CLASS_NAMES: list[str] = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
]
# Display colours: the download declares none; distinct ones, black left for what is ignored.
PALETTE = bitwise_palette(len(CLASS_NAMES) + 1)[1:]
OTHER = 0  # "other objects": not one of the 150, ignored


def ade_table(ignore_index: int = 255) -> np.ndarray:
    """Stored 1..150 -> 0..149, 0 ignored, anything else unknown."""
    return value_table({v: v - 1 for v in range(1, len(CLASS_NAMES) + 1)}, [OTHER], ignore_index)


class ADE20KDataset(OfficialDataset):
    """DATASET.NAME 'ade20k': splits train (training), val (validation) and test (testing, no labels)."""

    title = "ADE20K"
    default_classes = CLASS_NAMES
    default_palette = PALETTE
    split_dirs = {"train": "training", "val": "validation", "test": "testing"}

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        root = cfg.DATASET.ROOT
        labels = None if folder == "testing" else os.path.join(root, "annotations", folder)
        return find_pairs(os.path.join(root, "images", folder), ".jpg", labels, ".png", strict)

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return ade_table(cfg.DATASET.IGNORE_INDEX)
