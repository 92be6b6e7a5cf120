"""What a dataset declares for the Cityscapes benchmark's category and instance metrics.

The metrics themselves are computed in segkit/evaluation/instance_metrics.py; this is the declaration,
which lives with the dataset: the category of every class, which classes have instances, how instance
ids encode their class, and the average instance size that weights iIoU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class InstanceSpec:
    """`class_categories[c]` is the category name of train id c; `instance_classes` maps the class part of
    an instance id (value // 1000, a stored label value) to its train id, for the classes with instances;
    `avg_sizes` holds the average instance size (pixels) of each of those train ids; `instance_categories`
    names the categories whose every class has instances (their iIoU is defined). Datasets with categories
    but no instance maps leave the last three empty."""

    class_categories: tuple[str, ...]
    instance_classes: Mapping[int, int]
    avg_sizes: Mapping[int, float]
    instance_categories: tuple[str, ...]

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(self.class_categories))  # first-seen order, as the label table lists them

    def category_index(self) -> np.ndarray:
        """Category index of every train id."""
        names = self.categories
        return np.array([names.index(c) for c in self.class_categories], dtype=np.int64)


def cityscapes_instance_spec(class_names: Sequence[str] | None = None) -> InstanceSpec:
    """The Cityscapes spec from cityscapesscripts' label table and the official average instance sizes."""
    from cityscapesscripts.helpers.labels import category2labels, labels

    evaluated = sorted((lb for lb in labels if 0 <= lb.trainId < 255 and not lb.ignoreInEval), key=lambda lb: lb.trainId)
    if class_names is not None and [lb.name for lb in evaluated] != list(class_names):
        raise ValueError(f"class names {list(class_names)} are not Cityscapes' 19 train classes")
    instance = {lb.id: lb.trainId for lb in evaluated if lb.hasInstances}
    # A category has an iIoU when every class of it (with a label id) has instances: human and vehicle.
    instance_categories = tuple(
        cat for cat, members in category2labels.items()
        if all(lb.hasInstances for lb in members if lb.id >= 0) and any(lb.trainId in instance.values() for lb in members)
    )
    sizes = _official_avg_sizes()
    return InstanceSpec(
        class_categories=tuple(lb.category for lb in evaluated),
        instance_classes=instance,
        avg_sizes={lb.trainId: sizes[lb.name] for lb in evaluated if lb.hasInstances},
        instance_categories=instance_categories,
    )


def _official_avg_sizes() -> dict[str, float]:
    # The benchmark's weights are the official evaluator's own table; importing it keeps one source of truth.
    from cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling import args

    return dict(args.avgClassSize)
