"""PSPNet (Zhao et al., 2017) on a dilated backbone: pyramid pooling over c5, an auxiliary head on c4.

The published Cityscapes recipe pools c5 into 1x1, 2x2, 3x3 and 6x6 bins, projects each to 512
channels, upsamples them back, concatenates them with c5 and fuses with a 3x3 conv of 512
channels, then dropout 0.1 and the classifier. Everything but the decode head is FCN's.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ..heads import backbone_from_cfg
from ..layers import ConvBNAct
from .fcn import FCN


class PyramidPooling(nn.Module):
    """Average-pool into each bin grid, 1x1 conv-norm-ReLU, upsample back; returns the input and all levels."""

    def __init__(
        self, in_channels: int, channels: int, bins: Sequence[int], norm: str = "BN", align_corners: bool = False
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvBNAct(in_channels, channels, 1, norm=norm)) for b in bins
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        levels = [F.interpolate(s(x), size=size, mode="bilinear", align_corners=self.align_corners) for s in self.stages]
        return torch.cat([x, *levels], dim=1)


class PSPHead(nn.Module):
    """Pyramid pooling, 3x3 bottleneck conv, dropout, 1x1 classifier."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_classes: int,
        bins: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
        norm: str = "BN",
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.ppm = PyramidPooling(in_channels, channels, bins, norm, align_corners)
        self.bottleneck = ConvBNAct(in_channels + len(bins) * channels, channels, 3, norm=norm)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.bottleneck(self.ppm(x))))


class PSPNet(FCN):
    """FCN with a PSP decode head (same backbone handling, auxiliary head and head marking)."""


def build_pspnet(cfg: CfgNode) -> PSPNet:
    m = cfg.MODEL
    if not m.PPM_BINS or any(int(b) < 1 for b in m.PPM_BINS):
        raise ValueError(f"MODEL.PPM_BINS must be a non-empty list of positive bin counts, got {list(m.PPM_BINS)}")
    backbone = backbone_from_cfg(cfg)
    head = PSPHead(
        backbone.output_shape()["c5"].channels,
        m.HEAD_CHANNELS,
        m.NUM_CLASSES,
        bins=[int(b) for b in m.PPM_BINS],
        dropout=m.DROPOUT,
        norm=m.NORM,
        align_corners=m.ALIGN_CORNERS,
    )
    return PSPNet(backbone, head, m.NUM_CLASSES, m.AUX_CHANNELS, m.DROPOUT, m.NORM, m.ALIGN_CORNERS)
