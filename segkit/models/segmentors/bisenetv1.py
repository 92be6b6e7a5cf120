"""BiSeNetV1 (Yu et al., 2018): a shallow spatial path for detail, a context path on a zoo backbone.

With ResNet-18 and 19 classes the architecture matches the best public reproduction: 13,275,539
parameters for inference, 13,425,721 with the two training-only auxiliary heads. Any zoo backbone
works as the context path: the attention refinement modules take the channels of its declared
c4 and c5 outputs.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ..backbones import Backbone, backbone_from_cfg
from ..heads import AttentionRefinement, FeatureFusion, SegHead
from ..layers import ConvBNAct, init_weights
from .base import ZOO_BACKBONE_KEYS, Segmentor, output_align_corners, resize_logits


class SpatialPath(nn.Sequential):
    """Three strided convs (7x7, 3x3, 3x3; 64 channels) to stride 8, then a 1x1 conv to `out_channels`."""

    def __init__(self, out_channels: int = 128, norm: str = "BN") -> None:
        super().__init__(
            ConvBNAct(3, 64, 7, stride=2, norm=norm),
            ConvBNAct(64, 64, 3, stride=2, norm=norm),
            ConvBNAct(64, 64, 3, stride=2, norm=norm),
            ConvBNAct(64, out_channels, 1, norm=norm),
        )


class ContextPath(nn.Module):
    """The context path past the backbone: c4/c5 refined by attention, c5 plus its global context,
    merged top-down by upsampling.

    Returns the merged features at c3's and c4's resolution (strides 8 and 16 for an undilated
    backbone); the first feeds the fusion module, both feed the auxiliary heads.
    """

    def __init__(self, c4: int, c5: int, channels: int = 128, norm: str = "BN") -> None:
        super().__init__()
        self.arm16 = AttentionRefinement(c4, channels, norm)
        self.arm32 = AttentionRefinement(c5, channels, norm)
        self.global_context = ConvBNAct(c5, channels, 1, norm=norm)
        self.refine32 = ConvBNAct(channels, channels, 3, norm=norm)
        self.refine16 = ConvBNAct(channels, channels, 3, norm=norm)

    def forward(self, feats: "OrderedDict[str, torch.Tensor]") -> tuple[torch.Tensor, torch.Tensor]:
        c3, c4, c5 = feats["c3"], feats["c4"], feats["c5"]
        top = self.arm32(c5) + self.global_context(c5.mean((2, 3), keepdim=True))
        # Nearest upsampling to the next level's exact size, so odd input sizes line up.
        up16 = self.refine32(F.interpolate(top, size=c4.shape[-2:], mode="nearest"))
        up8 = self.refine16(F.interpolate(self.arm16(c4) + up16, size=c3.shape[-2:], mode="nearest"))
        return up8, up16


class BiSeNetV1(Segmentor):
    """Spatial path + context path -> feature fusion -> output head; auxiliary heads on the context path."""

    aux_names = ("aux16", "aux32")
    default_aux_weights = (1.0, 1.0)
    reads = ZOO_BACKBONE_KEYS | {"MODEL.OUTPUT_ALIGN_CORNERS"}
    head_names = ("ffm", "head", "aux16", "aux32")

    def __init__(self, backbone: Backbone, num_classes: int, norm: str = "BN", align_corners: bool = False,
                 output_align_corners: bool | None = None) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.output_align_corners = align_corners if output_align_corners is None else output_align_corners
        self.spatial = SpatialPath(128, norm)
        self.backbone = backbone
        shapes = backbone.output_shape()
        self.context = ContextPath(shapes["c4"].channels, shapes["c5"].channels, 128, norm)
        self.ffm = FeatureFusion(256, 256, norm)
        self.head = SegHead(256, 256, num_classes, norm)
        # aux16 predicts from the branch refined from c4 (stride 8), aux32 from the one refined from c5.
        self.aux16 = SegHead(128, 64, num_classes, norm)
        self.aux32 = SegHead(128, 64, num_classes, norm)
        # The public implementation initialises its own (non-backbone) convs with kaiming_normal_(a=1).
        for module in (self.spatial, self.context, self.ffm, self.head, self.aux16, self.aux32):
            init_weights(module, conv_init="kaiming_a1")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        size = x.shape[-2:]
        spatial = self.spatial(x)
        ctx8, ctx16 = self.context(self.backbone(x))
        if ctx8.shape[-2:] != spatial.shape[-2:]:
            # Backbones with other padding rules can round odd sizes differently from the spatial path.
            ctx8 = F.interpolate(ctx8, size=spatial.shape[-2:], mode="nearest")
        logits = resize_logits(self.head(self.ffm(spatial, ctx8)), size, self.output_align_corners)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training:
            aux["aux16"] = resize_logits(self.aux16(ctx8), size, self.output_align_corners)
            aux["aux32"] = resize_logits(self.aux32(ctx16), size, self.output_align_corners)
        return self.outputs(logits, aux)


def build_bisenetv1(cfg: CfgNode) -> BiSeNetV1:
    return BiSeNetV1(
        backbone_from_cfg(cfg), cfg.MODEL.NUM_CLASSES, norm=cfg.MODEL.NORM, align_corners=cfg.MODEL.ALIGN_CORNERS,
        output_align_corners=output_align_corners(cfg),
    )
