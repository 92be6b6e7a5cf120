"""Mapillary Vistas (Neuhold et al., ICCV 2017), research edition v1.2 (66 labels) and v2.0 (124 labels),
as the download unpacks:

    ROOT/config_v1.2.json, ROOT/config_v2.0.json          the label tables (name, colour, evaluate)
    ROOT/{training,validation}/images/<key>.jpg             18,000 / 2,000 images
    ROOT/{training,validation}/<version>/labels/<key>.png   indexed PNG, value = position in the table
    ROOT/testing/images/<key>.jpg                           5,000 images, no labels

or, for v1.2 downloaded on its own, ROOT/config.json and ROOT/{training,validation}/labels/<key>.png.

The classes are the labels whose "evaluate" flag is true, in table order: 65 of v1.2's 66 (not
void--unlabeled) and 116 of v2.0's 124 (not void--unlabeled nor the ambiguous and group labels); the labels
not evaluated map to the ignore index. The config JSON of the download is read when ROOT holds it;
otherwise the built-in tables (mapillary_tables.py, the same names, colours and flags) stand in. Class
names are the official machine names ("construction--flat--road").

`CITYSCAPES_RULES` declares how Mapillary labels become Cityscapes' 19 classes (segkit/data/class_mapping.py
applies it, for cross-dataset evaluation in both directions); labels it does not name have no counterpart.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
from yacs.config import CfgNode

from .base import Sample
from .official import OfficialDataset, find_pairs, value_table
from .mapillary_tables import NOT_EVALUATED, TABLES


@dataclass(frozen=True)
class Label:
    name: str
    color: tuple[int, int, int]
    evaluate: bool


# The v1.2 release on its own (the layout Mask2Former's instructions use) has no version folder and names its
# table config.json: ROOT/config.json, ROOT/{training,validation}/labels/<key>.png.
STANDALONE = "v1.2"


def _bundled_or_standalone(version: str, bundled: str, standalone: str) -> str:
    """`bundled` (the path in the v1.2 + v2.0 download), or `standalone` for a v1.2 download of its own
    where only that exists."""
    if version == STANDALONE and not os.path.exists(bundled) and os.path.exists(standalone):
        return standalone
    return bundled


def config_path(root: str, version: str) -> str:
    """The download's label table: config_<version>.json, or a v1.2 download's own config.json."""
    return _bundled_or_standalone(version, os.path.join(root, f"config_{version}.json"),
                                  os.path.join(root, "config.json"))


def label_folder(root: str, folder: str, version: str) -> str:
    """<folder>/<version>/labels, or a v1.2 download's own <folder>/labels."""
    return _bundled_or_standalone(version, os.path.join(root, folder, version, "labels"),
                                  os.path.join(root, folder, "labels"))


def read_config(path: str) -> list[Label]:
    """The labels of an official config_<version>.json; a file without them is an error naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)["labels"]
        return [Label(str(e["name"]), tuple(int(c) for c in e["color"]), bool(e.get("evaluate", True)))
                for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a Mapillary Vistas config (a 'labels' list of name, color, evaluate): "
                         f"{e.__class__.__name__}: {e}") from e


def builtin_labels(version: str) -> list[Label]:
    return [Label(name, color, name not in NOT_EVALUATED[version]) for name, color in TABLES[version]]


# Cityscapes class <- Mapillary labels: an entry ending in "--" takes every label it begins (v2.0 splits
# v1.2's labels into finer ones: human--person--individual, marking--discrete--..., object--traffic-light--...).
# Lane markings, crossings, bike and service lanes, manholes and potholes lie on the road; curbs, curb cuts and
# pedestrian areas are sidewalk in Cityscapes; sign frames are poles; only the fronts of signs are signs.
CITYSCAPES_RULES: dict[str, tuple[str, ...]] = {
    "road": ("construction--flat--road", "construction--flat--bike-lane", "construction--flat--crosswalk-plain",
             "construction--flat--service-lane", "construction--flat--road-shoulder", "marking--",
             "object--manhole", "object--pothole"),
    "sidewalk": ("construction--flat--sidewalk", "construction--flat--curb-cut", "construction--flat--pedestrian-area",
                 "construction--barrier--curb"),
    "building": ("construction--structure--building",),
    "wall": ("construction--barrier--wall",),
    "fence": ("construction--barrier--fence",),
    "pole": ("object--support--pole", "object--support--pole-group", "object--support--utility-pole",
             "object--support--traffic-sign-frame"),
    "traffic light": ("object--traffic-light", "object--traffic-light--"),
    "traffic sign": ("object--traffic-sign--front", "object--traffic-sign--direction-front",
                     "object--traffic-sign--temporary-front"),
    "vegetation": ("nature--vegetation",),
    "terrain": ("nature--terrain",),
    "sky": ("nature--sky",),
    "person": ("human--person", "human--person--"),
    "rider": ("human--rider--",),
    "car": ("object--vehicle--car",),
    "truck": ("object--vehicle--truck",),
    "bus": ("object--vehicle--bus",),
    "train": ("object--vehicle--on-rails",),
    "motorcycle": ("object--vehicle--motorcycle",),
    "bicycle": ("object--vehicle--bicycle",),
}


def cityscapes_class_of(name: str) -> str | None:
    """The Cityscapes class a Mapillary label becomes under CITYSCAPES_RULES, or None."""
    for target, patterns in CITYSCAPES_RULES.items():
        if any(name.startswith(p) if p.endswith("--") else name == p for p in patterns):
            return target
    return None


class MapillaryDataset(OfficialDataset):
    """The labels of one Mapillary version; subclasses set `version`. Splits train (training), val
    (validation) and test (testing, no labels)."""

    version = "v1.2"
    split_dirs = {"train": "training", "val": "validation", "test": "testing"}
    indexed_labels = True

    @classmethod
    def labels(cls, cfg: CfgNode) -> list[Label]:
        path = config_path(cfg.DATASET.ROOT, cls.version)
        return read_config(path) if os.path.isfile(path) else builtin_labels(cls.version)

    @classmethod
    def declared_classes(cls, cfg: CfgNode) -> tuple[list[str], list[list[int]]]:
        evaluated = [lab for lab in cls.labels(cfg) if lab.evaluate]
        return [lab.name for lab in evaluated], [list(lab.color) for lab in evaluated]

    @classmethod
    def label_table(cls, cfg: CfgNode) -> np.ndarray:
        labels = cls.labels(cfg)
        train_ids = {}
        for value, lab in enumerate(labels):
            if lab.evaluate:
                train_ids[value] = len(train_ids)
        ignored = [value for value, lab in enumerate(labels) if not lab.evaluate]
        return value_table(train_ids, ignored, cfg.DATASET.IGNORE_INDEX)

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        root = cfg.DATASET.ROOT
        labels = None if folder == "testing" else label_folder(root, folder, self.version)
        return find_pairs(os.path.join(root, folder, "images"), ".jpg", labels, ".png", strict)


class MapillaryV12Dataset(MapillaryDataset):
    """DATASET.NAME 'mapillary_v12'."""

    title = "Mapillary Vistas v1.2"
    version = "v1.2"


class MapillaryV20Dataset(MapillaryDataset):
    """DATASET.NAME 'mapillary_v20'."""

    title = "Mapillary Vistas v2.0"
    version = "v2.0"
