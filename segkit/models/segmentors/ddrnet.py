"""DDRNet (Hong et al., 2021): a low-resolution context branch and a stride-8 detail branch, fused both ways.

DDRNet-23-slim, -23 and -39 (MODEL.VARIANT ddrnet_23_slim, ddrnet_23, ddrnet_39) have the architecture of the official implementation: with 19
classes 5,695,987 / 20,148,947 / 32,360,275 parameters for inference, 5,734,342 / 20,299,366 / 32,660,838
with the auxiliary head on the high-resolution branch after stage 3. The residual blocks and stem here are
also PIDNet's.

The official code upsamples the branches to floor(H/8) x floor(W/8); here they go to the detail branch's actual
size. Both are the same wherever the official code runs (H and W multiples of 8: elsewhere its sums fail on
mismatched sizes), so converted official weights compute its function, and here any input size works.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ..heads.ddrnet import DAPPM, DDRHead
from ..layers import ConvBNAct, init_weights
from .base import Segmentor, output_align_corners, resize_logits


class BasicBlock(nn.Module):
    """Two 3x3 conv-norm layers and a shortcut; ReLU after the sum unless `act=False`, as the last block of
    a DDRNet stage leaves its output unactivated for the fusion that follows."""

    expansion = 1
    first_act = True  # a stage's first block ends with ReLU

    def __init__(self, in_ch: int, planes: int, stride: int = 1, act: bool = True, norm: str = "BN") -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_ch, planes, 3, stride, norm=norm)
        self.conv2 = ConvBNAct(planes, planes, 3, norm=norm, act=None)
        self.shortcut = _shortcut(in_ch, planes, stride, norm)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand by 2 (not 4 as in ResNet), shortcut; no ReLU after the sum by default."""

    expansion = 2
    first_act = False

    def __init__(self, in_ch: int, planes: int, stride: int = 1, act: bool = False, norm: str = "BN") -> None:
        super().__init__()
        out = planes * self.expansion
        self.body = nn.Sequential(
            ConvBNAct(in_ch, planes, 1, norm=norm),
            ConvBNAct(planes, planes, 3, stride, norm=norm),
            ConvBNAct(planes, out, 1, norm=norm, act=None),
        )
        self.shortcut = _shortcut(in_ch, out, stride, norm)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def _shortcut(in_ch: int, out_ch: int, stride: int, norm: str) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return ConvBNAct(in_ch, out_ch, 1, stride, norm=norm, act=None)


def make_stage(
    block: type[BasicBlock] | type[Bottleneck], in_ch: int, planes: int, blocks: int, stride: int = 1, norm: str = "BN"
) -> nn.Sequential:
    """`blocks` blocks, the first strided. The first ends as its type says (`first_act`), the last of several
    without ReLU (the fusion after the stage activates), those between with it: the official layers."""
    acts = [block.first_act] + [True] * (blocks - 2) + [False] * (blocks > 1)
    layers = [block(in_ch, planes, stride, acts[0], norm)]
    layers += [block(planes * block.expansion, planes, 1, a, norm) for a in acts[1:]]
    return nn.Sequential(*layers)


def stem(channels: int, norm: str = "BN") -> nn.Sequential:
    """Two strided 3x3 conv-norm-ReLU layers to stride 4; the convolutions keep their bias, as published."""
    return nn.Sequential(
        ConvBNAct(3, channels, 3, 2, norm=norm, bias=True), ConvBNAct(channels, channels, 3, 2, norm=norm, bias=True)
    )


class BilateralStage(nn.Module):
    """One stage of both branches, then bilateral fusion: the high-resolution branch is added to the low one
    through strided 3x3 convs, the low one to the high one through a 1x1 compression and upsampling."""

    def __init__(self, low_in: int, low_out: int, high: int, blocks: int, stride: int, down_convs: int,
                 norm: str = "BN", align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        # Both branches get the same number of blocks; the high one keeps its width and resolution.
        self.low = make_stage(BasicBlock, low_in, low_out, blocks, stride, norm)
        self.high = make_stage(BasicBlock, high, high, blocks, 1, norm)
        # Stride 2 per conv down to the low branch's resolution, ReLU between, none after the last.
        widths = [high] + [low_out // 2 ** (down_convs - 1 - i) for i in range(down_convs)]
        self.down = nn.Sequential(*[
            ConvBNAct(widths[i], widths[i + 1], 3, 2, norm=norm, act="relu" if i < down_convs - 1 else None)
            for i in range(down_convs)
        ])
        self.compress = ConvBNAct(low_out, high, 1, norm=norm, act=None)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.low(F.relu(low))
        high = self.high(F.relu(high))
        fused_low = low + self.down(F.relu(high))
        fused_high = high + resize_logits(self.compress(F.relu(low)), high.shape[-2:], self.align_corners)
        return fused_low, fused_high


class DDRNetSpec(NamedTuple):
    planes: int
    layers: tuple[int, int, int, int]  # blocks per stage, on each branch in stages 3-4 (DDRNet-39 fuses mid-stage 3)
    head_channels: int
    spp_channels: int = 128


VARIANTS = {
    "ddrnet_23_slim": DDRNetSpec(32, (2, 2, 2, 2), 64),
    "ddrnet_23": DDRNetSpec(64, (2, 2, 2, 2), 128),
    "ddrnet_39": DDRNetSpec(64, (3, 4, 6, 3), 256),
}


class DDRNet(Segmentor):
    """Stem, two shared stages to stride 8, then the dual-resolution stages 3 and 4 with bilateral fusion,
    a bottleneck on each branch, DAPPM on the stride-64 context, and the head on the sum at stride 8."""

    aux_names = ("aux",)
    default_aux_weights = (0.4,)
    head_names = ("head", "aux")
    reads = frozenset({"MODEL.OUTPUT_ALIGN_CORNERS", "MODEL.VARIANT"})

    def __init__(self, spec: DDRNetSpec, num_classes: int, norm: str = "BN", align_corners: bool = False,
                 output_align_corners: bool | None = None) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.output_align_corners = align_corners if output_align_corners is None else output_align_corners
        p, (n1, n2, n3, n4) = spec.planes, spec.layers
        high = 2 * p
        self.stem = stem(p, norm)
        self.layer1 = make_stage(BasicBlock, p, p, n1, 1, norm)
        self.layer2 = make_stage(BasicBlock, p, 2 * p, n2, 2, norm)
        # DDRNet-39 fuses twice in stage 3, after each half of its blocks; the 23s once.
        splits = 2 if n3 > 2 else 1
        self.stage3 = nn.ModuleList(
            BilateralStage(4 * p if i else 2 * p, 4 * p, high, n3 // splits, 1 if i else 2, 1, norm, align_corners)
            for i in range(splits)
        )
        self.stage4 = BilateralStage(4 * p, 8 * p, high, n4, 2, 2, norm, align_corners)
        self.high5 = make_stage(Bottleneck, high, high, 1, 1, norm)
        self.low5 = make_stage(Bottleneck, 8 * p, 8 * p, 1, 2, norm)
        self.spp = DAPPM(16 * p, spec.spp_channels, 4 * p, norm, align_corners)
        self.head = DDRHead(4 * p, spec.head_channels, num_classes, norm)
        self.aux = DDRHead(high, spec.head_channels, num_classes, norm)
        init_weights(self, conv_init="kaiming_fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        size = x.shape[-2:]
        x = self.layer2(F.relu(self.layer1(self.stem(x))))
        low, high = x, x
        for stage in self.stage3:
            low, high = stage(low, high)
        aux_in = high
        low, high = self.stage4(low, high)
        high = self.high5(F.relu(high))
        low = resize_logits(self.spp(self.low5(F.relu(low))), high.shape[-2:], self.align_corners)
        logits = resize_logits(self.head(low + high), size, self.output_align_corners)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training:
            aux["aux"] = resize_logits(self.aux(aux_in), size, self.output_align_corners)
        return self.outputs(logits, aux)


def variant(cfg: CfgNode, variants: Sequence[str]) -> str:
    """MODEL.VARIANT checked against the family's model names (full names, never a bare number that the
    command line would parse as an int); empty selects the first, the smallest."""
    name = cfg.MODEL.VARIANT or variants[0]
    if name not in variants:
        raise ValueError(f"MODEL.VARIANT '{name}' is not a {cfg.MODEL.NAME} model; expected one of {list(variants)}")
    return name


def build_ddrnet(cfg: CfgNode) -> DDRNet:
    spec = VARIANTS[variant(cfg, list(VARIANTS))]
    return DDRNet(spec, cfg.MODEL.NUM_CLASSES, norm=cfg.MODEL.NORM, align_corners=cfg.MODEL.ALIGN_CORNERS,
                  output_align_corners=output_align_corners(cfg))
