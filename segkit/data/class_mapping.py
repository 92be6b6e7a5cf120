"""Declared mappings between the class lists of two datasets, for cross-dataset evaluation.

A mapping takes each class of a source list to a class of a target list or to none. Datasets with the same
class list need none (Cityscapes, BDD100K, KITTI, ACDC, Dark Zurich share Cityscapes' 19). The declared
ones: Mapillary Vistas v1.2 / v2.0 -> Cityscapes (segkit/data/mapillary.py, CITYSCAPES_RULES).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .cityscapes import CLASS_NAMES as CITYSCAPES_CLASSES
from .mapillary import cityscapes_class_of
from .mapillary_tables import TABLES


@dataclass(frozen=True)
class ClassMapping:
    """`name`: how reports call it; `accepts(source)`: whether a source class list is this mapping's;
    `target`: the target class list; `target_of(source class)`: its target class name, or None."""

    name: str
    accepts: Callable[[Sequence[str]], bool]
    target: tuple[str, ...]
    target_of: Callable[[str], str | None]


def _is_mapillary(names: Sequence[str]) -> bool:
    known = {name for table in TABLES.values() for name, _ in table}
    return bool(names) and set(names) <= known


MAPPINGS: list[ClassMapping] = [
    ClassMapping("Mapillary Vistas -> Cityscapes", _is_mapillary, tuple(CITYSCAPES_CLASSES), cityscapes_class_of),
]


def find_class_mapping(source: Sequence[str], target: Sequence[str]) -> tuple[str, np.ndarray] | None:
    """(name, table) of the declared mapping from class list `source` to `target`: table[i] is the index in
    `target` of source class i, or -1 where it has no counterpart. None when no mapping is declared."""
    for mapping in MAPPINGS:
        if tuple(target) == mapping.target and mapping.accepts(source):
            index = {name: i for i, name in enumerate(target)}
            table = np.array([index.get(mapping.target_of(name), -1) for name in source], dtype=np.int64)
            return mapping.name, table
    return None
