"""The backbone zoo: one record per family, a plain dictionary from name to constructor, and the builders.

Adding a family: write `backbones/<family>.py` with its `MODELS` (name -> constructor(output_stride=32,
norm="BN", **kwargs)) and add its record to FAMILIES below; BACKBONES and the classifiers' default dropout read the record.
Weight converters from other libraries live in `segkit.models.convert`, which imports its modules.
"""
from __future__ import annotations

from typing import Callable

from yacs.config import CfgNode

from . import bisenetv2, efficientnet, resnet, stdc, xception
from .base import FEATURE_NAMES, Backbone, BackboneFamily, ShapeSpec

FAMILIES: dict[str, BackboneFamily] = {
    "resnet": BackboneFamily(resnet.MODELS),
    "efficientnet": BackboneFamily(efficientnet.MODELS, drop_rates=efficientnet.DROP_RATES),
    "xception": BackboneFamily(xception.MODELS),
    "stdc": BackboneFamily(stdc.MODELS, drop_rates=stdc.DROP_RATES),
    "bisenetv2": BackboneFamily(bisenetv2.MODELS, output_strides=(32,), only_for="bisenetv2"),
}

BACKBONES: dict[str, Callable[..., Backbone]] = {
    name: build for family in FAMILIES.values() for name, build in family.models.items()
}


def list_backbones() -> list[str]:
    """Every registered backbone name, sorted."""
    return sorted(BACKBONES)


def _record(name: str) -> BackboneFamily | None:
    """The family record of `name`; None for a constructor put straight into BACKBONES (tests do that)."""
    return next((family for family in FAMILIES.values() if name in family.models), None)


def family_of(name: str) -> BackboneFamily:
    """The family record that registers backbone `name`."""
    family = _record(name)
    if family is not None:
        return family
    raise KeyError(f"unknown backbone '{name}'; available: {', '.join(list_backbones())}")


def build_backbone(
    name: str, output_stride: int = 32, norm: str = "BN", frozen_stages: int = -1, **kwargs
) -> Backbone:
    """Build a zoo backbone by name; `frozen_stages=k` freezes the stem and the first k stages."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone '{name}'; available: {', '.join(list_backbones())}")
    family = _record(name)
    strides = family.output_strides if family is not None else (8, 16, 32)
    if output_stride not in strides:
        raise ValueError(f"output_stride {output_stride}: backbone '{name}' supports {list(strides)}")
    backbone = BACKBONES[name](output_stride=output_stride, norm=norm, **kwargs)
    if frozen_stages >= 0:
        backbone.freeze_stages(frozen_stages)
    return backbone


def backbone_from_cfg(cfg: CfgNode) -> Backbone:
    """The zoo backbone MODEL.BACKBONE describes, normed by MODEL.NORM.

    DROP_PATH_RATE is passed only when set, since only some families have stochastic depth.
    """
    b = cfg.MODEL.BACKBONE
    family = _record(b.NAME)
    if family is not None and family.only_for not in (None, cfg.MODEL.NAME):
        raise ValueError(f"MODEL.BACKBONE.NAME {b.NAME} is part of MODEL.NAME {family.only_for}; "
                         f"{cfg.MODEL.NAME} cannot build on it")
    kwargs = {"drop_path_rate": b.DROP_PATH_RATE} if b.DROP_PATH_RATE > 0 else {}
    return build_backbone(
        b.NAME, output_stride=b.OUTPUT_STRIDE, norm=cfg.MODEL.NORM, frozen_stages=b.FROZEN_STAGES, **kwargs
    )


__all__ = ["Backbone", "BackboneFamily", "ShapeSpec", "FEATURE_NAMES", "FAMILIES", "BACKBONES", "build_backbone",
           "backbone_from_cfg", "family_of", "list_backbones"]
