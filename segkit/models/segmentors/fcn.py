"""FCN on a dilated backbone (the "D8" models): a conv head on c5, an auxiliary conv head on c4.

The published Cityscapes recipe (ResNet-50/101 at output stride 8) decodes c5 with two 3x3 convs
of 512 channels whose output is concatenated with the input and fused by a third 3x3 conv, then
dropout 0.1 and the classifier; the auxiliary head (one 3x3 conv of 256, loss weight 0.4) sees c4.
PSPNet reuses this model with another decode head.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from yacs.config import CfgNode

from ..backbones import Backbone, backbone_from_cfg
from ..heads import FCNHead
from ..layers import init_weights
from .base import ZOO_BACKBONE_KEYS, Segmentor, resize_logits


class FCN(Segmentor):
    """Backbone -> `decode_head` on c5 -> logits; an FCN head on c4 gives the auxiliary logits in training."""

    aux_names = ("aux",)
    default_aux_weights = (0.4,)
    head_names = ("decode_head", "aux")
    # The aux head's keys, and the decode head's of build_fcn; PSPNet, built on this class, declares its own.
    reads = ZOO_BACKBONE_KEYS | {"MODEL.DROPOUT", "MODEL.AUX_CHANNELS", "MODEL.HEAD_CHANNELS", "MODEL.FCN_NUM_CONVS",
                                 "MODEL.FCN_CONCAT_INPUT"}

    def __init__(
        self,
        backbone: Backbone,
        decode_head: nn.Module,
        num_classes: int,
        aux_channels: int = 256,
        dropout: float = 0.1,
        norm: str = "BN",
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.backbone = backbone
        self.decode_head = decode_head
        c4 = backbone.output_shape()["c4"].channels
        self.aux = FCNHead(c4, aux_channels, num_classes, num_convs=1, dropout=dropout, norm=norm)
        init_weights(self.decode_head)
        init_weights(self.aux)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        size = x.shape[-2:]
        feats = self.backbone(x)
        logits = resize_logits(self.decode_head(feats["c5"]), size, self.align_corners)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training:
            aux["aux"] = resize_logits(self.aux(feats["c4"]), size, self.align_corners)
        return self.outputs(logits, aux)


def build_fcn(cfg: CfgNode) -> FCN:
    m = cfg.MODEL
    backbone = backbone_from_cfg(cfg)
    head = FCNHead(
        backbone.output_shape()["c5"].channels,
        m.HEAD_CHANNELS,
        m.NUM_CLASSES,
        num_convs=m.FCN_NUM_CONVS,
        concat_input=m.FCN_CONCAT_INPUT,
        dropout=m.DROPOUT,
        norm=m.NORM,
    )
    return FCN(backbone, head, m.NUM_CLASSES, m.AUX_CHANNELS, m.DROPOUT, m.NORM, m.ALIGN_CORNERS)
