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
from yacs.config import CfgNode

from ..backbones import Backbone, backbone_from_cfg
from ..heads import ASPP, Decoder
from ..layers import init_weights
from .base import Segmentor, resize_logits


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
        init_weights(self.aspp)
        init_weights(self.decoder)

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
