"""COCO-Stuff (Caesar et al., CVPR 2018): 182 ids, of which 171 are labelled, in its two official downloads.

COCO-Stuff 164k (DATASET.NAME cocostuff164k): the COCO 2017 images and stuffthingmaps_trainval2017.zip,
placed as CoinCheung/BiSeNet and mmsegmentation expect (each zip unpacks to train2017/ and val2017/):

    ROOT/images/{train2017,val2017,test2017}/<id>.jpg
    ROOT/annotations/{train2017,val2017}/<id>.png       values 0..181 (COCO id - 1), 255 unlabelled

COCO-Stuff 10k (DATASET.NAME cocostuff10k), cocostuff-10k-v1.1.zip as it unpacks (9,000 train, 1,000 test,
the split the BiSeNet and SCTNet papers report):

    ROOT/images/<name>.jpg   ROOT/annotations/<name>.mat ("S": 1..182 = COCO id, 0 unlabelled)
    ROOT/imageLists/{train,test}.txt

Eleven COCO thing ids have no annotation in either release (street sign, hat, shoe, eye glasses, plate,
mirror, window, desk, door, blender, hair brush); the other 171 become train ids 0..170 in id order, the
table CoinCheung/BiSeNet (lib/data/coco.py) and mmsegmentation (tools/dataset_converters/coco_stuff164k.py)
use. A file holding one of the eleven is reported as a value outside the table.
"""
from __future__ import annotations

import os

import numpy as np
from yacs.config import CfgNode

from .base import Sample
from .official import OfficialDataset, bitwise_palette, find_pairs, list_pairs, value_table

# The 182 COCO-Stuff labels (labels.txt of the official release), index = id - 1; None: never annotated.
COCO_STUFF_LABELS: tuple[str | None, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", None, "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", None, "backpack", "umbrella", None, None,
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
    "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", None, "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
    "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", None, "dining table", None, None,
    "toilet", None, "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", None, "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush", None,
    # stuff, ids 92..182
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard",
    "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain",
    "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile",
    "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel",
    "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain",
    "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform",
    "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad", "sand", "sea",
    "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
    "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick",
    "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)
# Stored values of the 164k maps (id - 1) that are evaluated, in train-id order.
EVALUATED_IDS: tuple[int, ...] = tuple(i for i, name in enumerate(COCO_STUFF_LABELS) if name is not None)
CLASS_NAMES: list[str] = [COCO_STUFF_LABELS[i] for i in EVALUATED_IDS]
# Display colours (the label maps are ids, the download declares none): distinct, black left for what is ignored.
PALETTE = bitwise_palette(len(CLASS_NAMES) + 1)[1:]
UNLABELLED_164K = 255
UNLABELLED_10K = 0


def table_164k(ignore_index: int = 255) -> np.ndarray:
    """Stored value (COCO id - 1) -> train id; 255 ignored; the eleven unannotated ids unknown."""
    return value_table({v: t for t, v in enumerate(EVALUATED_IDS)}, [UNLABELLED_164K], ignore_index)


def table_10k(ignore_index: int = 255) -> np.ndarray:
    """Stored value (COCO id) -> train id; 0 ignored. The 164k table shifted by one."""
    return value_table({v + 1: t for t, v in enumerate(EVALUATED_IDS)}, [UNLABELLED_10K], ignore_index)


class CocoStuff164kDataset(OfficialDataset):
    """DATASET.NAME 'cocostuff164k': 118k train / 5k val images (val2017 is what papers report)."""

    title = "COCO-Stuff 164k"
    default_classes = CLASS_NAMES
    default_palette = PALETTE
    split_dirs = {"train": "train2017", "val": "val2017", "test": "test2017"}

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        root = cfg.DATASET.ROOT
        labels = os.path.join(root, "annotations", folder)
        # test2017 has no stuff annotation; any other split must have them.
        return find_pairs(os.path.join(root, "images", folder), ".jpg",
                          labels if folder != "test2017" or os.path.isdir(labels) else None, ".png", strict)

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return table_164k(cfg.DATASET.IGNORE_INDEX)


class CocoStuff10kDataset(OfficialDataset):
    """DATASET.NAME 'cocostuff10k': splits train (9,000) and test (1,000; 'val' names it too), both labelled."""

    title = "COCO-Stuff 10k"
    default_classes = CLASS_NAMES
    default_palette = PALETTE
    split_dirs = {"val": "test"}

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        root = cfg.DATASET.ROOT
        return list_pairs(os.path.join(root, "imageLists", f"{folder}.txt"), os.path.join(root, "images", "{id}.jpg"),
                          os.path.join(root, "annotations", "{id}.mat"), strict)

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        return table_10k(cfg.DATASET.IGNORE_INDEX)
