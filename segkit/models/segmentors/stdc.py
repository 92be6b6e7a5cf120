"""STDC-Seg (Fan et al., CVPR 2021): BiSeNet's context path and fusion on an STDC backbone, whose stride-8
features serve as the spatial path, taught detail by a training-only head.

With MODEL.BACKBONE.NAME stdc1 / stdc2 and 19 classes the model has the official architecture: 8,275,104 /
12,305,568 parameters for inference, 8,572,896 / 12,603,360 in training with the two auxiliary heads and the
stride-8 detail head. The official code also builds an unused ImageNet classifier and three detail heads
training never uses (3.1M parameters) and runs them in every forward pass; they are not built here.
Seg50 / Seg75 are the same model evaluated at half / three-quarter resolution (TEST.SCALE in the configs).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from yacs.config import CfgNode

from ..backbones import Backbone, backbone_from_cfg
from ..heads import FeatureFusion, SegHead
from ..layers import init_weights
from .base import ZOO_BACKBONE_KEYS, Segmentor, output_align_corners, resize_logits
from .bisenetv1 import ContextPath


class STDCSeg(Segmentor):
    """Context path on c4/c5, fusion with c3, output head; in training two auxiliary heads on the context path
    and a 1-channel detail head on c3 (stride 8) trained against Laplacian boundaries of the label map."""

    aux_names = ("aux16", "aux32", "detail")
    default_aux_weights = (1.0, 1.0, 1.0)
    aux_losses = {"detail": "detail"}
    # The official recipe gives the fusion module and every output head the 10x learning rate.
    head_names = ("ffm", "head", "aux16", "aux32", "detail")
    reads = ZOO_BACKBONE_KEYS | {"MODEL.OUTPUT_ALIGN_CORNERS"}

    def __init__(self, backbone: Backbone, num_classes: int, norm: str = "BN", align_corners: bool = True,
                 output_align_corners: bool | None = None) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.output_align_corners = align_corners if output_align_corners is None else output_align_corners
        self.backbone = backbone
        shapes = backbone.output_shape()
        c3 = shapes["c3"].channels
        self.context = ContextPath(shapes["c4"].channels, shapes["c5"].channels, 128, norm)
        self.ffm = FeatureFusion(c3 + 128, 256, norm, reduction=4)
        # STDC-Seg's classifiers have no bias.
        self.head = SegHead(256, 256, num_classes, norm, bias=False)
        self.aux16 = SegHead(128, 64, num_classes, norm, bias=False)
        self.aux32 = SegHead(128, 64, num_classes, norm, bias=False)
        self.detail = SegHead(c3, 64, 1, norm, bias=False)
        # The official code initialises its own (non-backbone) convs with kaiming_normal_(a=1).
        for module in (self.context, self.ffm, self.head, self.aux16, self.aux32, self.detail):
            init_weights(module, conv_init="kaiming_a1")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        size, ac = x.shape[-2:], self.output_align_corners
        feats = self.backbone(x)
        ctx8, ctx16 = self.context(feats)
        logits = resize_logits(self.head(self.ffm(feats["c3"], ctx8)), size, ac)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training:
            aux["aux16"] = resize_logits(self.aux16(ctx8), size, ac)
            aux["aux32"] = resize_logits(self.aux32(ctx16), size, ac)
            aux["detail"] = resize_logits(self.detail(feats["c3"]), size, ac)
        return self.outputs(logits, aux)


def build_stdc(cfg: CfgNode) -> STDCSeg:
    return STDCSeg(backbone_from_cfg(cfg), cfg.MODEL.NUM_CLASSES, norm=cfg.MODEL.NORM,
                   align_corners=cfg.MODEL.ALIGN_CORNERS, output_align_corners=output_align_corners(cfg))
