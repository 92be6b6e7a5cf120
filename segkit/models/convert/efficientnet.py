"""timm and torchvision EfficientNet state_dicts -> segkit EfficientNet classifiers.

Both sources number blocks by (stage, index in stage); segkit groups the seven stages into
stem/layer1..layer4 (see backbones/efficientnet.py), so a block's new index is its position in
that group. Inside a block the layers are renamed by role (expand, dw, se, project).

BN eps: segkit's EfficientNet uses 1e-5; torchvision's B5-B7 use 1e-3. Eval-mode BN divides by
sqrt(running_var + eps), so adding the eps difference to running_var keeps the outputs exact.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Mapping

import torch

from ..backbones.efficientnet import COEFFICIENTS, NORM_EPS, STAGE_GROUP, stage_repeats
from . import rename_keys

# Per-block layer names (after the block prefix) -> segkit names, for blocks without / with expansion.
TIMM_DS = [
    (r"conv_dw\.(\w+)", r"dw.conv.\1"), (r"bn1\.(\w+)", r"dw.bn.\1"),
    (r"conv_pw\.(\w+)", r"project.conv.\1"), (r"bn2\.(\w+)", r"project.bn.\1"),
]
TIMM_IR = [
    (r"conv_pw\.(\w+)", r"expand.conv.\1"), (r"bn1\.(\w+)", r"expand.bn.\1"),
    (r"conv_dw\.(\w+)", r"dw.conv.\1"), (r"bn2\.(\w+)", r"dw.bn.\1"),
    (r"conv_pwl\.(\w+)", r"project.conv.\1"), (r"bn3\.(\w+)", r"project.bn.\1"),
]
TIMM_SE = [(r"se\.conv_reduce\.(\w+)", r"se.reduce.\1"), (r"se\.conv_expand\.(\w+)", r"se.expand.\1")]
TIMM_TOP = [
    (r"conv_stem\.weight", "backbone.stem.conv.conv.weight"), (r"bn1\.(\w+)", r"backbone.stem.conv.bn.\1"),
    (r"conv_head\.weight", "pre_logits.conv.weight"), (r"bn2\.(\w+)", r"pre_logits.bn.\1"),
    (r"classifier\.(\w+)", r"fc.\1"),
]
# torchvision: block.{j} is a conv-norm-act (j.0 conv, j.1 norm) or the SE (fc1, fc2).
TV_SE = [(r"block\.(\d)\.fc1\.(\w+)", r"se.reduce.\2"), (r"block\.(\d)\.fc2\.(\w+)", r"se.expand.\2")]


def _tv_conv(j: int, role: str) -> list[tuple[str, str]]:
    return [(rf"block\.{j}\.0\.weight", f"{role}.conv.weight"), (rf"block\.{j}\.1\.(\w+)", rf"{role}.bn.\1")]


TV_DS = _tv_conv(0, "dw") + _tv_conv(2, "project")
TV_IR = _tv_conv(0, "expand") + _tv_conv(1, "dw") + _tv_conv(3, "project")
TV_TOP = [
    (r"features\.0\.0\.weight", "backbone.stem.conv.conv.weight"), (r"features\.0\.1\.(\w+)", r"backbone.stem.conv.bn.\1"),
    (r"features\.8\.0\.weight", "pre_logits.conv.weight"), (r"features\.8\.1\.(\w+)", r"pre_logits.bn.\1"),
    (r"classifier\.1\.(\w+)", r"fc.\1"),
]
# torchvision builds B5-B7 with TF-style BN statistics.
TV_EPS = {"efficientnet_b5": 1e-3, "efficientnet_b6": 1e-3, "efficientnet_b7": 1e-3}


def block_prefixes(name: str) -> dict[tuple[int, int], str]:
    """(stage, index in stage) -> segkit key prefix of that block, for model `name`."""
    _, depth, _, _ = COEFFICIENTS[name]
    prefixes: dict[tuple[int, int], str] = {}
    used = [0] * 5
    for s, n in enumerate(stage_repeats(depth, lite="lite" in name)):
        group = STAGE_GROUP[s]
        for i in range(n):
            prefixes[(s, i)] = ("backbone.stem.blocks." if group == 0 else f"backbone.layer{group}.") + str(used[group])
            used[group] += 1
    return prefixes


def _convert(
    state_dict: Mapping[str, torch.Tensor], name: str, block_re: str, top: list, ds: list, ir: list, stage_offset: int
) -> dict[str, torch.Tensor]:
    prefixes = block_prefixes(name)
    blocks: dict[str, torch.Tensor] = {}
    rest: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = re.fullmatch(block_re, key)
        if m is None:
            rest[key] = value
            continue
        stage, index, inner = int(m.group(1)) - stage_offset, int(m.group(2)), m.group(3)
        prefix = prefixes.get((stage, index))
        if prefix is None:  # a block this model does not have: keep it so check_fits names it
            rest[key] = value
            continue
        # Stage 0 is the only stage without an expansion conv in every EfficientNet.
        renamed = rename_keys({inner: value}, ds if stage == 0 else ir)
        ((new_inner, tensor),) = renamed.items()
        blocks[f"{prefix}.{new_inner}"] = tensor
    return {**rename_keys(rest, top), **blocks}


def fold_bn_eps(state_dict: dict[str, torch.Tensor], src_eps: float, dst_eps: float) -> dict[str, torch.Tensor]:
    """Make BN layers built with `dst_eps` compute what the source's `src_eps` layers did (eval mode)."""
    if src_eps == dst_eps:
        return state_dict
    if src_eps < dst_eps:
        raise ValueError(f"cannot fold BN eps {src_eps} into a larger eps {dst_eps}: running_var could go negative")
    return {k: v + (src_eps - dst_eps) if k.endswith("running_var") else v for k, v in state_dict.items()}


def convert_timm(state_dict: Mapping[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """timm `efficientnet_*` (blocks.{stage}.{i}.*) -> segkit."""
    return _convert(state_dict, name, r"blocks\.(\d+)\.(\d+)\.(.+)", TIMM_TOP, TIMM_DS + TIMM_SE, TIMM_IR + TIMM_SE, 0)


def convert_torchvision(state_dict: Mapping[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """torchvision `efficientnet_b*` (features.{stage+1}.{i}.block.*) -> segkit."""
    converted = _convert(
        state_dict, name, r"features\.(\d+)\.(\d+)\.(block\..+)", TV_TOP, TV_DS + TV_SE, TV_IR + TV_SE, 1
    )
    return fold_bn_eps(converted, TV_EPS.get(name, 1e-5), NORM_EPS)


CONVERTERS = {
    **{("timm", name): partial(convert_timm, name=name) for name in COEFFICIENTS},
    **{("torchvision", name): partial(convert_torchvision, name=name) for name in COEFFICIENTS if "lite" not in name},
}
