"""Segmentation models: a plain dictionary from MODEL.NAME to a builder taking the config."""
from __future__ import annotations

from typing import Callable

from yacs.config import CfgNode

from .base import Segmentor, resize_logits

SEGMENTORS: dict[str, Callable[[CfgNode], Segmentor]] = {}

__all__ = ["SEGMENTORS", "Segmentor", "resize_logits"]
