"""The backbone zoo: a plain dictionary from name to constructor."""
from __future__ import annotations

from typing import Callable

from . import efficientnet, resnet, xception
from .base import FEATURE_NAMES, Backbone, ShapeSpec

# Each family module exports MODELS: name -> constructor(output_stride=32, norm="BN", **kwargs).
BACKBONES: dict[str, Callable[..., Backbone]] = {**resnet.MODELS, **efficientnet.MODELS, **xception.MODELS}


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def build_backbone(
    name: str, output_stride: int = 32, norm: str = "BN", frozen_stages: int = -1, **kwargs
) -> Backbone:
    """Build a zoo backbone by name; `frozen_stages=k` freezes the stem and the first k stages."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone '{name}'; available: {', '.join(list_backbones())}")
    backbone = BACKBONES[name](output_stride=output_stride, norm=norm, **kwargs)
    if frozen_stages >= 0:
        backbone.freeze_stages(frozen_stages)
    return backbone


__all__ = ["Backbone", "ShapeSpec", "FEATURE_NAMES", "BACKBONES", "build_backbone", "list_backbones"]
