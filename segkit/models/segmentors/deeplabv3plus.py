"""DeepLabV3+ (Chen et al., 2018): ASPP on the deepest features, a decoder that fuses the stride-4 ones.

MODEL.DEEPLAB_STYLE picks one of the two published forms (the heads are in heads/aspp.py):

- "tf", the published Xception-65 model: ASPP of a 1x1 branch, three atrous *separable* 3x3 branches
  (rates 6, 12, 18 at output stride 16, doubled at 8) and image pooling, each of ASPP_CHANNELS (256),
  concatenated and projected by a 1x1 conv, dropout 0.1; the decoder projects c2 to 48 channels,
  concatenates it with the upsampled ASPP output and applies two separable 3x3 convs before the
  classifier. No auxiliary head.
- "mmseg", mmsegmentation's deeplabv3plus_r50-d8 (DepthwiseSeparableASPPHead): the same branches at
  width 512, image pooling first in the concat, a plain 3x3 bottleneck instead of the 1x1 projection and
  no dropout there; the decoder as above at width 512, dropout 0.1 before the classifier; an FCN
  auxiliary head on c4 (one 3x3 conv of AUX_CHANNELS, dropout 0.1), loss weight 0.4. Classifiers start
  from N(0, 0.01), as mmseg's decode heads do.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from ..backbones import Backbone, backbone_from_cfg
from ..heads import ASPP, Decoder, FCNHead
from ..layers import init_weights
from .base import ZOO_BACKBONE_KEYS, Segmentor, resize_logits

STYLES = ("tf", "mmseg")


class DeepLabV3Plus(Segmentor):
    """Backbone -> ASPP on c5 -> decoder with c2 -> logits; with `aux`, an auxiliary head on c4 in training."""

    aux_names: tuple[str, ...] = ()
    default_aux_weights: tuple[float, ...] = ()
    head_names: tuple[str, ...] = ("aspp", "decoder")
    # Both styles; the mmseg style's aux head adds MODEL.AUX_CHANNELS per instance.
    reads = ZOO_BACKBONE_KEYS | {"MODEL.DROPOUT", "MODEL.DEEPLAB_STYLE", "MODEL.ASPP_RATES", "MODEL.ASPP_CHANNELS",
                                 "MODEL.ASPP_SEPARABLE", "MODEL.DECODER_LOW_CHANNELS"}

    def __init__(
        self, backbone: Backbone, aspp: ASPP, decoder: Decoder, aux: nn.Module | None = None,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.backbone = backbone
        self.aspp = aspp
        self.decoder = decoder
        init_weights(self.aspp)
        init_weights(self.decoder)
        if aux is not None:  # declared per instance: only the mmseg form has the head
            self.aux = aux
            init_weights(self.aux)
            self.aux_names, self.default_aux_weights = ("aux",), (0.4,)
            self.head_names = self.head_names + ("aux",)
            self.reads = self.reads | {"MODEL.AUX_CHANNELS"}  # its width; the TF form would ignore the key

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        size = x.shape[-2:]
        feats = self.backbone(x)
        logits = resize_logits(self.decoder(feats["c2"], self.aspp(feats["c5"])), size, self.align_corners)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training and self.aux_names:
            aux["aux"] = resize_logits(self.aux(feats["c4"]), size, self.align_corners)
        return self.outputs(logits, aux)


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
    if m.DEEPLAB_STYLE not in STYLES:
        raise ValueError(f"MODEL.DEEPLAB_STYLE must be one of {STYLES}, got '{m.DEEPLAB_STYLE}'")
    mmseg = m.DEEPLAB_STYLE == "mmseg"
    backbone = backbone_from_cfg(cfg)
    shapes = backbone.output_shape()
    rates = aspp_rates(m.ASPP_RATES, shapes["c5"].stride)
    # TF drops out after the ASPP projection; mmseg before the classifier, its ASPP ending in a 3x3 bottleneck.
    aspp = ASPP(
        shapes["c5"].channels, m.ASPP_CHANNELS, rates, m.ASPP_SEPARABLE, 0.0 if mmseg else m.DROPOUT, m.NORM,
        project_kernel=3 if mmseg else 1, pool_first=mmseg, align_corners=m.ALIGN_CORNERS,
    )
    decoder = Decoder(
        shapes["c2"].channels, m.ASPP_CHANNELS, m.NUM_CLASSES, m.DECODER_LOW_CHANNELS, m.ASPP_CHANNELS,
        m.ASPP_SEPARABLE, m.NORM, m.ALIGN_CORNERS, dropout=m.DROPOUT if mmseg else 0.0,
    )
    aux = None
    if mmseg:
        aux = FCNHead(shapes["c4"].channels, m.AUX_CHANNELS, m.NUM_CLASSES, num_convs=1, dropout=m.DROPOUT, norm=m.NORM)
    model = DeepLabV3Plus(backbone, aspp, decoder, aux, m.ALIGN_CORNERS)
    if mmseg:
        for head in (model.decoder, model.aux):
            nn.init.normal_(head.classifier.weight, std=0.01)  # mmseg's conv_seg init; biases are already 0
    return model
