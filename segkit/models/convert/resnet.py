"""torchvision and timm ResNet / ResNet-C / ResNet-D / SE-ResNet state_dicts -> segkit ResNet classifiers.

Both libraries name a block's layers conv{i}/bn{i} and the shortcut downsample.{0,1} (conv, norm),
or downsample.{1,2} after the -D average pool; timm's deep stem (-C and -D) is conv1.{0,1,3,4,6} + bn1.
The stem and the shortcut are independent choices, so each has its own rules.
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
PLAIN_STEM_RULES = [
    (r"conv1\.weight", "backbone.stem.conv1.conv.weight"),
    (r"bn1\.(\w+)", r"backbone.stem.conv1.bn.\1"),
]
DEEP_STEM_RULES = [
    (r"conv1\.0\.weight", "backbone.stem.conv1.conv.weight"),
    (r"conv1\.1\.(\w+)", r"backbone.stem.conv1.bn.\1"),
    (r"conv1\.3\.weight", "backbone.stem.conv2.conv.weight"),
    (r"conv1\.4\.(\w+)", r"backbone.stem.conv2.bn.\1"),
    (r"conv1\.6\.weight", "backbone.stem.conv3.conv.weight"),
    (r"bn1\.(\w+)", r"backbone.stem.conv3.bn.\1"),
]
STRIDED_SHORTCUT_RULES = [
    (BLOCK + r"downsample\.0\.weight", r"backbone.layer\1.\2.downsample.conv.conv.weight"),
    (BLOCK + r"downsample\.1\.(\w+)", r"backbone.layer\1.\2.downsample.conv.bn.\3"),
]
POOLED_SHORTCUT_RULES = [  # -D: downsample.0 is the parameter-free average pool
    (BLOCK + r"downsample\.1\.weight", r"backbone.layer\1.\2.downsample.conv.conv.weight"),
    (BLOCK + r"downsample\.2\.(\w+)", r"backbone.layer\1.\2.downsample.conv.bn.\3"),
]


def convert_resnet(
    state_dict: Mapping[str, torch.Tensor], deep_stem: bool = False, avg_down: bool = False
) -> dict[str, torch.Tensor]:
    """Rename a torchvision/timm ResNet state_dict; deep_stem for -C and -D, avg_down for -D's shortcut."""
    stem = DEEP_STEM_RULES if deep_stem else PLAIN_STEM_RULES
    shortcut = POOLED_SHORTCUT_RULES if avg_down else STRIDED_SHORTCUT_RULES
    return rename_keys(state_dict, stem + shortcut + COMMON_RULES)


DEPTHS = (18, 34, 50, 101, 152)
TIMM_C_DEPTHS = (50, 101, 152)  # the -C models timm registers (its resnet50c/101c/152c)
CONVERTERS = {
    **{("torchvision", f"resnet{d}"): convert_resnet for d in DEPTHS},
    **{("timm", f"resnet{d}"): convert_resnet for d in DEPTHS},
    **{("timm", f"seresnet{d}"): convert_resnet for d in DEPTHS},
    **{("timm", f"resnet{d}c"): partial(convert_resnet, deep_stem=True) for d in TIMM_C_DEPTHS},
    **{("timm", f"resnet{d}d"): partial(convert_resnet, deep_stem=True, avg_down=True) for d in DEPTHS},
}
