"""DeepLabV3+ (Chen et al., 2018): ASPP on the deepest features, a decoder that fuses the stride-4 ones.

Follows the published Xception-65 model: ASPP of a 1x1 branch, three atrous *separable* 3x3
branches (rates 6, 12, 18 at output stride 16, doubled at 8) and image pooling, each of 256
channels, concatenated and projected by a 1x1 conv, dropout 0.1; the decoder projects c2 to 48
channels, concatenates it with the upsampled ASPP output and applies two separable 3x3 convs
of 256 before the classifier. The published model has no auxiliary head.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ..backbones import Backbone
from ..heads import backbone_from_cfg, init_head_weights
from ..layers import ConvBNAct, SeparableConv2d
from .base import Segmentor, resize_logits


def _conv3x3(in_channels: int, out_channels: int, dilation: int, separable: bool, norm: str) -> nn.Module:
    if separable:
        return SeparableConv2d(in_channels, out_channels, 3, dilation=dilation, norm=norm)
    return ConvBNAct(in_channels, out_channels, 3, dilation=dilation, norm=norm)


class ImagePooling(nn.Module):
    """Global average pool, 1x1 conv-norm-ReLU, broadcast back to the input size."""

    def __init__(self, in_channels: int, channels: int, norm: str = "BN") -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels, channels, 1, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Upsampling a 1x1 map bilinearly is a broadcast; expand says so without the interpolation.
        return self.conv(x.mean((2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, one 3x3 per rate, image pooling; concat, 1x1 projection, dropout."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        rates: Sequence[int],
        separable: bool = True,
        dropout: float = 0.1,
        norm: str = "BN",
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNAct(in_channels, channels, 1, norm=norm)]
            + [_conv3x3(in_channels, channels, r, separable, norm) for r in rates]
            + [ImagePooling(in_channels, channels, norm)]
        )
        self.project = ConvBNAct(channels * len(self.branches), channels, 1, norm=norm)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.project(torch.cat([b(x) for b in self.branches], dim=1)))


class Decoder(nn.Module):
    """Project the low-level features, concatenate with the upsampled context, two 3x3 convs, classifier."""

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
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.low_proj = ConvBNAct(low_channels, low_proj, 1, norm=norm)
        self.fuse = nn.Sequential(
            _conv3x3(context_channels + low_proj, channels, 1, separable, norm),
            _conv3x3(channels, channels, 1, separable, norm),
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, low: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        low = self.low_proj(low)
        context = F.interpolate(context, size=low.shape[-2:], mode="bilinear", align_corners=self.align_corners)
        return self.classifier(self.fuse(torch.cat([context, low], dim=1)))


class DeepLabV3Plus(Segmentor):
    """Backbone -> ASPP on c5 -> decoder with c2 -> logits. No auxiliary head."""

    aux_names = ()
    default_aux_weights = ()
    head_names = ("aspp", "decoder")

    def __init__(self, backbone: Backbone, aspp: ASPP, decoder: Decoder, align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.backbone = backbone
        self.aspp = aspp
        self.decoder = decoder
        init_head_weights(self.aspp)
        init_head_weights(self.decoder)

    def forward(self, x: torch.Tensor):
        feats = self.backbone(x)
        logits = self.decoder(feats["c2"], self.aspp(feats["c5"]))
        return self.outputs(resize_logits(logits, x.shape[-2:], self.align_corners), OrderedDict())


def aspp_rates(rates: Sequence[int], output_stride: int) -> list[int]:
    """Rates given for output stride 16, scaled to the backbone's real output stride (doubled at 8)."""
    if output_stride not in (8, 16, 32):
        raise ValueError(f"MODEL.BACKBONE.OUTPUT_STRIDE must be 8, 16 or 32, got {output_stride}")
    scaled = [int(r) * 16 // output_stride for r in rates]
    if not scaled or min(scaled) < 1:
        raise ValueError(f"MODEL.ASPP_RATES {list(rates)} give no valid dilation at output stride {output_stride}")
    return scaled


def build_deeplabv3plus(cfg: CfgNode) -> DeepLabV3Plus:
    m = cfg.MODEL
    backbone = backbone_from_cfg(cfg)
    shapes = backbone.output_shape()
    rates = aspp_rates(m.ASPP_RATES, shapes["c5"].stride)
    aspp = ASPP(shapes["c5"].channels, m.ASPP_CHANNELS, rates, m.ASPP_SEPARABLE, m.DROPOUT, m.NORM)
    decoder = Decoder(
        shapes["c2"].channels, m.ASPP_CHANNELS, m.NUM_CLASSES, m.DECODER_LOW_CHANNELS, m.ASPP_CHANNELS,
        m.ASPP_SEPARABLE, m.NORM, m.ALIGN_CORNERS,
    )
    return DeepLabV3Plus(backbone, aspp, decoder, m.ALIGN_CORNERS)
