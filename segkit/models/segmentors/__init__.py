"""Segmentation models: a plain dictionary from MODEL.NAME to a builder taking the config."""
from __future__ import annotations

from typing import Callable

from yacs.config import CfgNode

from .base import Segmentor, resize_logits
from .bisenetv1 import build_bisenetv1
from .bisenetv2 import build_bisenetv2
from .ddrnet import build_ddrnet
from .deeplabv3plus import build_deeplabv3plus
from .fcn import build_fcn
from .pidnet import build_pidnet
from .pspnet import build_pspnet
from .stdc import build_stdc

SEGMENTORS: dict[str, Callable[[CfgNode], Segmentor]] = {
    "bisenetv1": build_bisenetv1,
    "bisenetv2": build_bisenetv2,
    "fcn": build_fcn,
    "pspnet": build_pspnet,
    "deeplabv3plus": build_deeplabv3plus,
    "ddrnet": build_ddrnet,
    "pidnet": build_pidnet,
    "stdc": build_stdc,
}

__all__ = ["SEGMENTORS", "Segmentor", "resize_logits"]
