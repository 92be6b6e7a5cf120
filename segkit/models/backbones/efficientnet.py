"""EfficientNet B0-B7 (Tan & Le 2019) and EfficientNet-Lite0-4 as pyramid backbones.

Every model scales the B0 stage table by a width multiplier (channels, rounded to multiples of
8) and a depth multiplier (repeats, rounded up). B models use squeeze-excitation (1/4 of the
block's input channels) and SiLU; Lite models drop SE, use ReLU6, keep a 32-channel stem and a
1280-channel head and do not scale the repeats of the first and last stage.

The seven EfficientNet stages are grouped by the stride they end at: stem conv + stage 1 form
`stem` (stride 2), stage 2 -> `layer1` (c2, stride 4), stage 3 -> `layer2` (c3, 8), stages 4-5 ->
`layer3` (c4, 16), stages 6-7 -> `layer4` (c5, 32); B0 gives 24, 40, 112, 320 channels. The 1x1
head convolution is not part of the backbone: `build_pre_logits()` makes it for a classifier.

Dilation (output_stride 8/16): a group that gives up its stride runs its first block at the
previous dilation and the rest at the new one, in its depthwise convolutions.

Norm: eps 1e-5, momentum 0.1 by default (timm's efficientnet_*); `norm_eps`/`norm_momentum`
select TF-style statistics (1e-3, 0.01). Weight conversion folds an eps difference into the
running variance, so either source converts exactly.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import Callable

import torch
from torch import nn

from ..layers import ConvBNAct, DropPath, SqueezeExcite, init_weights, make_divisible
from .base import FEATURE_NAMES, ShapeSpec, StagedBackbone, dilation_schedule

# B0 stages: (repeats, kernel, stride, expand ratio, output channels).
BASE_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
# Index of the backbone group (0 = stem, 1..4 = layer1..layer4) each stage belongs to.
STAGE_GROUP = (0, 1, 2, 3, 3, 4, 4)

# name -> (width multiplier, depth multiplier, resolution, dropout), from the papers.
COEFFICIENTS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
    "efficientnet_lite3": (1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": (1.4, 1.8, 300, 0.3),
}
DROP_RATES: dict[str, float] = {name: c[3] for name, c in COEFFICIENTS.items()}
NORM_EPS = 1e-5  # default BN eps; converters fold other sources' eps into the running variance


def stage_repeats(depth: float, lite: bool = False) -> list[int]:
    """Blocks per stage after depth scaling (Lite keeps the first and last stage as in B0)."""
    repeats = [math.ceil(r * depth) for r, *_ in BASE_STAGES]
    if lite:
        repeats[0], repeats[-1] = BASE_STAGES[0][0], BASE_STAGES[-1][0]
    return repeats


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 linear projection.

    With expand ratio 1 there is no expansion (the depthwise-separable block of stage 1). The
    residual (with drop-connect) exists when the block keeps stride and channels.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, dilation: int, expand: int,
        se_ratio: float, act: str, drop_path: float, **bn,
    ) -> None:
        super().__init__()
        mid = in_ch * expand
        self.expand = ConvBNAct(in_ch, mid, 1, act=act, **bn) if expand != 1 else nn.Identity()
        self.dw = ConvBNAct(mid, mid, kernel, stride, dilation, groups=mid, act=act, **bn)
        # SE width is a fraction of the block *input* channels, as in the reference models.
        self.se = SqueezeExcite(mid, max(1, int(in_ch * se_ratio)), act=act) if se_ratio > 0 else nn.Identity()
        self.project = ConvBNAct(mid, out_ch, 1, act=None, **bn)
        self.has_skip = stride == 1 and in_ch == out_ch
        self.drop_path = DropPath(drop_path) if self.has_skip and drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.dw(self.expand(x))))
        if self.has_skip:
            out = self.drop_path(out)
            out += x  # in place: the norm output is not needed by its backward, and this saves a copy
        return out


class EfficientNet(StagedBackbone):
    """EfficientNet body without the head convolution; outputs c2..c5."""

    def __init__(
        self,
        width: float = 1.0,
        depth: float = 1.0,
        lite: bool = False,
        output_stride: int = 32,
        norm: str = "BN",
        drop_path_rate: float = 0.0,
        norm_eps: float = NORM_EPS,
        norm_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.act = "relu6" if lite else "silu"
        self._bn = dict(norm=norm, norm_eps=norm_eps, norm_momentum=norm_momentum)
        se_ratio = 0.0 if lite else 0.25
        stem_ch = 32 if lite else make_divisible(32 * width)
        self.head_channels = 1280 if lite else make_divisible(1280 * width)

        repeats = stage_repeats(depth, lite)
        total, done = sum(repeats), 0
        # (stride, dilation) per group: the stem and layer1 always stride; layer2..4 follow output_stride.
        schedule = ((2, 1), (2, 1)) + dilation_schedule(output_stride)
        groups: list[list[nn.Module]] = [[] for _ in range(5)]
        in_ch, dilation, stride_now = stem_ch, 1, 2
        strides: list[int] = []
        for s, ((_, kernel, stride, expand, base_out), n) in enumerate(zip(BASE_STAGES, repeats)):
            group = STAGE_GROUP[s]
            first_in_group = not groups[group]
            out_ch = make_divisible(base_out * width)
            for i in range(n):
                block_stride, block_dil = 1, dilation
                if first_in_group and i == 0 and stride > 1:
                    block_stride, new_dil = schedule[group]
                    stride_now *= block_stride
                    dilation = new_dil  # the next blocks run at the group's dilation
                # Drop-connect rises linearly with the block's position in the network.
                dpr = drop_path_rate * done / total
                groups[group].append(
                    MBConv(in_ch, out_ch, kernel, block_stride, block_dil, expand, se_ratio, self.act, dpr, **self._bn)
                )
                in_ch, done = out_ch, done + 1
            if s + 1 == len(BASE_STAGES) or STAGE_GROUP[s + 1] != group:
                strides.append(stride_now)
        self.stem = nn.Sequential(
            OrderedDict(conv=ConvBNAct(3, stem_ch, 3, 2, act=self.act, **self._bn), blocks=nn.Sequential(*groups[0]))
        )
        self.layer1, self.layer2, self.layer3, self.layer4 = (nn.Sequential(*g) for g in groups[1:])
        self._out_shapes = OrderedDict(
            (name, ShapeSpec(layer[-1].project.conv.out_channels, stride))
            for name, layer, stride in zip(FEATURE_NAMES, self.stages()[1:], strides[1:])
        )
        init_weights(self)

    def build_pre_logits(self) -> tuple[nn.Module, int]:
        """The 1x1 head conv + norm + act that widens c5 to `head_channels` before pooling."""
        head = ConvBNAct(self.num_features, self.head_channels, 1, act=self.act, **self._bn)
        init_weights(head)
        return head, self.head_channels


def _build(name: str, output_stride: int = 32, norm: str = "BN", **kwargs) -> EfficientNet:
    width, depth, _, _ = COEFFICIENTS[name]
    return EfficientNet(width, depth, "lite" in name, output_stride=output_stride, norm=norm, **kwargs)


MODELS: dict[str, Callable[..., EfficientNet]] = {name: partial(_build, name) for name in COEFFICIENTS}
