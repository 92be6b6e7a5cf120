"""torchvision and timm ResNet / ResNet-D / SE-ResNet state_dicts -> segkit ResNet classifiers.

Both libraries name a block's layers conv{i}/bn{i} and the shortcut downsample.{0,1} (conv, norm),
or downsample.{1,2} after the -D average pool; timm's deep stem is conv1.{0,1,3,4,6} + bn1.
"""
from __future__ import annotations

from functools import partial
from typing import Mapping

import torch

from . import rename_keys

BLOCK = r"layer(\d)\.(\d+)\."
COMMON_RULES = [
    (BLOCK + r"conv(\d)\.weight", r"backbone.layer\1.\2.conv\3.conv.weight"),
    (BLOCK + r"bn(\d)\.(\w+)", r"backbone.layer\1.\2.conv\3.bn.\4"),
    (BLOCK + r"se\.fc1\.(\w+)", r"backbone.layer\1.\2.se.reduce.\3"),
    (BLOCK + r"se\.fc2\.(\w+)", r"backbone.layer\1.\2.se.expand.\3"),
    (r"fc\.(\w+)", r"fc.\1"),
]
PLAIN_RULES = [
    (r"conv1\.weight", "backbone.stem.conv1.conv.weight"),
    (r"bn1\.(\w+)", r"backbone.stem.conv1.bn.\1"),
    (BLOCK + r"downsample\.0\.weight", r"backbone.layer\1.\2.downsample.conv.conv.weight"),
    (BLOCK + r"downsample\.1\.(\w+)", r"backbone.layer\1.\2.downsample.conv.bn.\3"),
]
DEEP_RULES = [
    (r"conv1\.0\.weight", "backbone.stem.conv1.conv.weight"),
    (r"conv1\.1\.(\w+)", r"backbone.stem.conv1.bn.\1"),
    (r"conv1\.3\.weight", "backbone.stem.conv2.conv.weight"),
    (r"conv1\.4\.(\w+)", r"backbone.stem.conv2.bn.\1"),
    (r"conv1\.6\.weight", "backbone.stem.conv3.conv.weight"),
    (r"bn1\.(\w+)", r"backbone.stem.conv3.bn.\1"),
    (BLOCK + r"downsample\.1\.weight", r"backbone.layer\1.\2.downsample.conv.conv.weight"),
    (BLOCK + r"downsample\.2\.(\w+)", r"backbone.layer\1.\2.downsample.conv.bn.\3"),
]


def convert_resnet(state_dict: Mapping[str, torch.Tensor], deep: bool = False) -> dict[str, torch.Tensor]:
    """Rename a torchvision/timm ResNet state_dict (deep=True for the -D stem and shortcut)."""
    return rename_keys(state_dict, (DEEP_RULES if deep else PLAIN_RULES) + COMMON_RULES)


DEPTHS = (18, 34, 50, 101, 152)
CONVERTERS = {
    **{("torchvision", f"resnet{d}"): convert_resnet for d in DEPTHS},
    **{("timm", f"resnet{d}"): convert_resnet for d in DEPTHS},
    **{("timm", f"seresnet{d}"): convert_resnet for d in DEPTHS},
    **{("timm", f"resnet{d}d"): partial(convert_resnet, deep=True) for d in DEPTHS},
}
