"""DeepLabV3+'s heads: ImagePooling, ASPP (atrous spatial pyramid pooling) and the Decoder that fuses c2.

Two published forms share these modules (segmentors/deeplabv3plus.py picks one by MODEL.DEEPLAB_STYLE):
TensorFlow's (1x1 projection after the concat, dropout there, none before the classifier) and
mmsegmentation's DepthwiseSeparableASPPHead (image pooling first in the concat, a 3x3 bottleneck,
dropout before the classifier).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import ConvBNAct, SeparableConv2d


def _conv3x3(in_channels: int, out_channels: int, dilation: int, separable: bool, norm: str) -> nn.Module:
    if separable:
        return SeparableConv2d(in_channels, out_channels, 3, dilation=dilation, norm=norm)
    return ConvBNAct(in_channels, out_channels, 3, dilation=dilation, norm=norm)


class ImagePooling(nn.Module):
    """Global average pool, 1x1 conv-norm-ReLU, bilinear upsampling back to the input size."""

    def __init__(self, in_channels: int, channels: int, norm: str = "BN", align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.conv = ConvBNAct(in_channels, channels, 1, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In exact arithmetic a broadcast, but not in float32 with align_corners=False: PyTorch's two bilinear
        # weights of a 1x1 map sum to 1 only up to rounding. mmseg upsamples, so segkit does too, bit for bit.
        pooled = self.conv(x.mean((2, 3), keepdim=True))
        return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=self.align_corners)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, one 3x3 per rate, image pooling; concat, projection, dropout.

    `project_kernel` is 1 (TF) or 3 (mmseg's bottleneck). `pool_first` concatenates the pooling branch
    first, mmseg's channel order, so the projection's input channels line up with its checkpoints.
    `align_corners` is that of the image pooling's upsampling (the model's MODEL.ALIGN_CORNERS).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        rates: Sequence[int],
        separable: bool = True,
        dropout: float = 0.1,
        norm: str = "BN",
        project_kernel: int = 1,
        pool_first: bool = False,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.pool_first = pool_first
        self.branches = nn.ModuleList(
            [ConvBNAct(in_channels, channels, 1, norm=norm)]
            + [_conv3x3(in_channels, channels, r, separable, norm) for r in rates]
            + [ImagePooling(in_channels, channels, norm, align_corners)]
        )
        self.project = ConvBNAct(channels * len(self.branches), channels, project_kernel, norm=norm)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        if self.pool_first:  # the pooling branch is the last one built
            outs.insert(0, outs.pop())
        return self.dropout(self.project(torch.cat(outs, dim=1)))


class Decoder(nn.Module):
    """DeepLabV3+ decoder: project the low-level features, concatenate with the upsampled context,
    two 3x3 convs, dropout (mmseg's 0.1; TF has none), classifier."""

    def __init__(
        self,
        low_channels: int,
        context_channels: int,
        num_classes: int,
        low_proj: int = 48,
        channels: int = 256,
        separable: bool = True,
        norm: str = "BN",
        align_corners: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.low_proj = ConvBNAct(low_channels, low_proj, 1, norm=norm)
        self.fuse = nn.Sequential(
            _conv3x3(context_channels + low_proj, channels, 1, separable, norm),
            _conv3x3(channels, channels, 1, separable, norm),
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, low: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        low = self.low_proj(low)
        context = F.interpolate(context, size=low.shape[-2:], mode="bilinear", align_corners=self.align_corners)
        return self.classifier(self.dropout(self.fuse(torch.cat([context, low], dim=1))))
