"""PSPNet's decode head: PyramidPooling (the pyramid pooling module) and PSPHead."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import ConvBNAct


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
