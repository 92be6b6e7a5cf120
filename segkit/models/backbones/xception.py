"""Aligned Xception 41/65/71 in the DeepLab form (Chen et al. 2018) as pyramid backbones.

Differences from the original Xception: every max-pool is a stride-2 separable convolution
(the third of a unit), every depthwise convolution is followed by batch norm, the middle flow has
8 (41) or 16 (65, 71) units, and Xception-71 has two extra entry units. Residual units are
pre-activated (ReLU before each separable conv); the last exit unit has no residual and puts
BN + ReLU after both its depthwise and pointwise convolutions. These facts match the DeepLab
TF checkpoints and timm's xception41/65/71 (xception_aligned), so their weights convert.

Outputs are the outputs of the last unit at each stride (the residual sums of stages 1-3 and the
activated exit flow): c2 stride 4 (128 channels; 256 for Xception-71), c3 stride 8 (256; 728 for
71), c4 stride 16 (728, middle flow output), c5 stride 32 (2048). DeepLabV3+ takes c2 for its
decoder and c5 for ASPP. Stages: `stem` (two 3x3 convs, stride 2), then `layer1..layer4` holding
the units ending at strides 4, 8, 16 and 32.

Dilation (output_stride 8/16): a stage that gives up its stride runs its first unit at the
previous dilation and the rest at the new one. A unit whose stride became dilation keeps its
1x1 projection shortcut (unstrided), so every output stride holds the same weights (timm drops
it in Xception-71 at output stride 8). BN eps defaults to 1e-3 as in the TF reference.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBNAct, DropPath, SeparableConv2d, init_weights
from .base import FEATURE_NAMES, ShapeSpec, StagedBackbone, dilation_schedule

NORM_EPS = 1e-3  # default BN eps, the TF DeepLab reference's

# A unit: (input channels, output channels of its three separable convs, stride).
Unit = tuple[int, tuple[int, int, int], int]


def _units(entry: list[tuple[int, int, int]], middle: int) -> list[Unit]:
    units: list[Unit] = [(i, (o, o, o), s) for i, o, s in entry]
    units += [(728, (728, 728, 728), 1)] * middle
    units += [(728, (728, 1024, 1024), 2), (1024, (1536, 1536, 2048), 1)]
    return units


ENTRY_41_65 = [(64, 128, 2), (128, 256, 2), (256, 728, 2)]
ENTRY_71 = [(64, 128, 2), (128, 256, 1), (256, 256, 2), (256, 728, 1), (728, 728, 2)]
ARCHS: dict[str, list[Unit]] = {
    "xception41": _units(ENTRY_41_65, 8),
    "xception65": _units(ENTRY_41_65, 16),
    "xception71": _units(ENTRY_71, 16),
}


def unit_stages(units: list[Unit]) -> list[int]:
    """Stage of each unit (0 = layer1 .. 3 = layer4): the one whose stride (4..32) the unit reaches."""
    stages, stride = [], 2
    for _, _, unit_stride in units:
        stride *= unit_stride
        stages.append(stride.bit_length() - 3)
    return stages


class XceptionUnit(nn.Module):
    """Three 3x3 separable convs (the third strided) plus a residual.

    `residual=False` gives the final exit unit: no shortcut and BN + ReLU inside each separable
    conv instead of the ReLU before it. `project=True` keeps the 1x1 projection shortcut of a
    unit whose stride was turned into dilation, so dilated models hold the same weights.
    """

    def __init__(
        self, in_ch: int, out_chs: tuple[int, int, int], stride: int = 1, dilation: int = 1,
        residual: bool = True, drop_path: float = 0.0, project: bool = False, **bn,
    ) -> None:
        super().__init__()
        self.residual = residual
        act = None if residual else "relu"
        chans = (in_ch,) + tuple(out_chs)
        self.sep1, self.sep2, self.sep3 = (
            SeparableConv2d(chans[i], chans[i + 1], 3, stride if i == 2 else 1, dilation, act=act, **bn)
            for i in range(3)
        )
        needs_proj = residual and (project or in_ch != out_chs[-1] or stride != 1)
        self.shortcut = ConvBNAct(in_ch, out_chs[-1], 1, stride, act=None, **bn) if needs_proj else nn.Identity()
        self.drop_path = DropPath(drop_path) if residual and drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i, sep in enumerate((self.sep1, self.sep2, self.sep3)):
            if self.residual:
                out = F.relu(out, inplace=i > 0)  # the input itself is still needed by the shortcut
            out = sep(out)
        if self.residual:
            out = self.drop_path(out)
            out += self.shortcut(x)  # in place: the norm output is not needed by its backward
        return out


class Xception(StagedBackbone):
    """Aligned Xception body; outputs c2..c5."""

    def __init__(
        self,
        units: list[Unit],
        output_stride: int = 32,
        norm: str = "BN",
        drop_path_rate: float = 0.0,
        norm_eps: float = NORM_EPS,
        norm_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        bn = dict(norm=norm, norm_eps=norm_eps, norm_momentum=norm_momentum)
        self.stem = nn.Sequential(ConvBNAct(3, 32, 3, 2, **bn), ConvBNAct(32, 64, 3, 1, **bn))
        schedule = ((2, 1),) + dilation_schedule(output_stride)
        stages: list[list[nn.Module]] = [[] for _ in range(4)]
        real, dilation = 2, 1
        strides = [0, 0, 0, 0]
        for idx, ((in_ch, out_chs, stride), stage) in enumerate(zip(units, unit_stages(units))):
            unit_dil, project = dilation, stride > 1
            if stride > 1:  # only a stage's first unit strides
                stride, dilation = schedule[stage]
                real *= stride
            strides[stage] = real
            dpr = drop_path_rate * idx / (len(units) - 1)  # drop-path rises linearly with depth
            stages[stage].append(
                XceptionUnit(
                    in_ch, out_chs, stride, unit_dil, residual=idx < len(units) - 1, drop_path=dpr, project=project, **bn
                )
            )
        self.layer1, self.layer2, self.layer3, self.layer4 = (nn.Sequential(*s) for s in stages)
        self._out_shapes = OrderedDict(
            (name, ShapeSpec(units_[-1].sep3.pointwise.conv.out_channels, stride))
            for name, units_, stride in zip(FEATURE_NAMES, stages, strides)
        )
        init_weights(self)


def _build(name: str, output_stride: int = 32, norm: str = "BN", **kwargs) -> Xception:
    return Xception(ARCHS[name], output_stride=output_stride, norm=norm, **kwargs)


MODELS: dict[str, Callable[..., Xception]] = {name: partial(_build, name) for name in ARCHS}
