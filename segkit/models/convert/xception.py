"""timm aligned Xception (xception41/65/71) state_dicts -> segkit Xception classifiers.

timm numbers units in one sequence (blocks.{i}); segkit puts them in layer1..layer4 by the
stride they reach, so unit i's new name is found by walking the same unit table. Both use
BN eps 1e-3, so no statistics change.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Mapping

import torch

from ..backbones.xception import ARCHS, unit_stages
from . import rename_keys

UNIT_RULES = [
    (r"stack\.conv(\d)\.conv_dw\.(\w+)", r"sep\1.depthwise.conv.\2"),
    (r"stack\.conv(\d)\.bn_dw\.(\w+)", r"sep\1.depthwise.bn.\2"),
    (r"stack\.conv(\d)\.conv_pw\.(\w+)", r"sep\1.pointwise.conv.\2"),
    (r"stack\.conv(\d)\.bn_pw\.(\w+)", r"sep\1.pointwise.bn.\2"),
    (r"shortcut\.conv\.(\w+)", r"shortcut.conv.\1"),
    (r"shortcut\.bn\.(\w+)", r"shortcut.bn.\1"),
]
TOP_RULES = [
    (r"stem\.(\d)\.conv\.(\w+)", r"backbone.stem.\1.conv.\2"),
    (r"stem\.(\d)\.bn\.(\w+)", r"backbone.stem.\1.bn.\2"),
    (r"head\.fc\.(\w+)", r"fc.\1"),
]


def unit_prefixes(name: str) -> list[str]:
    """segkit key prefix of each unit of model `name`, in network order."""
    prefixes, used = [], [0] * 4
    for stage in unit_stages(ARCHS[name]):
        prefixes.append(f"backbone.layer{stage + 1}.{used[stage]}")
        used[stage] += 1
    return prefixes


def convert_timm(state_dict: Mapping[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """timm `xception41/65/71` (stem.{0,1}, blocks.{i}, head.fc) -> segkit."""
    prefixes = unit_prefixes(name)
    units: dict[str, torch.Tensor] = {}
    rest: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
        if m is None or int(m.group(1)) >= len(prefixes):  # unknown keys stay so check_fits names them
            rest[key] = value
            continue
        ((inner, tensor),) = rename_keys({m.group(2): value}, UNIT_RULES).items()
        units[f"{prefixes[int(m.group(1))]}.{inner}"] = tensor
    return {**rename_keys(rest, TOP_RULES), **units}


CONVERTERS = {("timm", name): partial(convert_timm, name=name) for name in ARCHS}
