"""Cross-dataset evaluation: a model trained on one dataset judged on another.

The model's dataset is MODEL.TRAINED_ON, else the DATASET.NAME of the config its checkpoint carries, else
the config's own DATASET.NAME. Its classes and the evaluated dataset's are then
- the same list (Cityscapes -> BDD100K, KITTI, ACDC, Dark Zurich): evaluated as they are;
- linked by a declared mapping from the model's classes to the dataset's (Mapillary model on Cityscapes):
  the model's class probabilities are summed per target class (`ClassMappedModel`), so a prediction is the
  most probable target class and classes without a counterpart do not compete;
- linked by a declared mapping from the dataset's classes to the model's (Cityscapes model on Mapillary):
  the dataset's labels are read as the model's classes, labels without a counterpart ignored;
- anything else: an error naming both class lists.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from ..config import ConfigError
from ..data import SegDataset, dataset_classes
from ..data.build import dataset_title
from ..data.class_mapping import find_class_mapping
from ..utils.checkpoint import CheckpointError
from ..zoo.runconfig import carried_cfg
from .inference import Model

logger = logging.getLogger("segkit")


class ClassMappedModel(nn.Module):
    """`model`'s logits over its source classes -> log-probabilities of the target classes: the softmax
    probabilities of the source classes mapped to each target, summed (`class_map[i]`: target of source
    class i, -1 for none). A target no source maps to gets probability 0."""

    def __init__(self, model: Model, class_map: Sequence[int], num_targets: int) -> None:
        super().__init__()
        if isinstance(model, nn.Module):
            self.model = model
        else:  # a runtime (onnxruntime, compiled) is a plain callable
            self.__dict__["model"] = model
        class_map = torch.as_tensor(np.asarray(class_map), dtype=torch.long)
        onehot = torch.zeros(len(class_map), num_targets)
        mapped = class_map >= 0
        onehot[torch.nonzero(mapped).squeeze(1), class_map[mapped]] = 1.0
        self.register_buffer("onehot", onehot, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        probs = torch.softmax(logits.float(), dim=1)
        target = torch.einsum("nchw,ct->nthw", probs, self.onehot.to(probs.device))
        return torch.log(target.clamp_min(torch.finfo(target.dtype).tiny))


def checkpoint_config(weights: str | None) -> CfgNode | None:
    """The config the weights carry (a segkit checkpoint's, a zoo entry's or an official file's), or None: no
    weights, an ONNX file, a bare state_dict, or weights that cannot be read (the model load names why)."""
    if not weights:
        return None
    try:
        found = carried_cfg(weights)
    except (CheckpointError, FileNotFoundError, ConfigError, KeyError):
        return None
    return found[0] if found else None


def model_dataset(cfg: CfgNode, trained_cfg: CfgNode | None = None) -> tuple[str, list[str]]:
    """(DATASET.NAME, class names) of the dataset the weights were trained on: MODEL.TRAINED_ON, else the
    DATASET of `trained_cfg` (the config the weights carry), else the config's own DATASET.NAME."""
    source = _named(cfg, cfg.MODEL.TRAINED_ON or cfg.DATASET.NAME)
    carried = None if cfg.MODEL.TRAINED_ON or trained_cfg is None else trained_cfg.get("DATASET")
    if carried is not None and carried.get("NAME"):
        # A dataset whose classes its config declares (folder) is named by the carried keys too.
        for key in ("NAME", "CLASS_NAMES", "ROOT"):
            if key in carried:
                source.DATASET[key] = carried[key]
    names, _ = dataset_classes(source)
    return source.DATASET.NAME, names


def _class_list(title: str, names: Sequence[str]) -> str:
    return f"{title} ({len(names)} classes: {', '.join(names)})"


def adapt_to_dataset(cfg: CfgNode, model: Model, dataset: SegDataset, trained_cfg: CfgNode | None = None
                     ) -> tuple[Model, dict[str, Any]]:
    """The model to run on `dataset` and the report entries naming both datasets; relabels `dataset` in place
    where its classes map to the model's. `trained_cfg`: the config the weights carry (`checkpoint_config`),
    which names the model's dataset unless MODEL.TRAINED_ON does. Errors: MODEL.NUM_CLASSES not the model
    dataset's class count, or two class lists with no declared mapping (both named)."""
    trained_on, model_classes = model_dataset(cfg, trained_cfg)
    if len(model_classes) != cfg.MODEL.NUM_CLASSES:
        raise ConfigError(f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES} but the model's dataset {trained_on} has "
                          f"{len(model_classes)} classes")
    report = {"trained_on": trained_on, "evaluated_on": cfg.DATASET.NAME}
    if list(model_classes) == dataset.class_names:
        return model, report
    forward = find_class_mapping(model_classes, dataset.class_names)
    if forward is not None:
        name, table = forward
        logger.info("predictions of the %s model mapped to %s classes (%s)", trained_on, cfg.DATASET.NAME, name)
        return ClassMappedModel(model, table, dataset.num_classes), {**report, "class_mapping": name}
    backward = find_class_mapping(dataset.class_names, model_classes)
    if backward is not None:
        name, table = backward
        _, palette = dataset_classes(_named(cfg, trained_on))
        dataset.remap_classes(model_classes, palette, table)
        logger.info("labels of %s read as the %s classes of the model (%s)", cfg.DATASET.NAME, trained_on, name)
        return model, {**report, "class_mapping": name}
    raise ConfigError(
        f"the model was trained on {_class_list(dataset_title(trained_on), model_classes)} and cannot be evaluated "
        f"on {_class_list(dataset_title(cfg.DATASET.NAME), dataset.class_names)}: the class lists differ and no "
        f"mapping between them is declared (segkit/data/class_mapping.py); set MODEL.TRAINED_ON if the model's "
        f"dataset is named wrongly")


def _named(cfg: CfgNode, name: str) -> CfgNode:
    out = cfg.clone()
    out.defrost()
    out.DATASET.NAME = name
    return out
