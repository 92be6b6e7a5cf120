"""BiSeNetV2 (Yu et al., 2021): a wide shallow detail branch and a narrow deep semantic branch.

The architecture follows the best public reproduction (19 classes: 3,358,627 parameters for
inference, 5,231,487 with the four training-only booster heads). Its two branches are the zoo backbone
`bisenetv2` (segkit/models/backbones/bisenetv2.py), so MODEL.BACKBONE.WEIGHTS loads them from an export of
`tools/pretrain_cls.py`; without it they train from scratch.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ...config import get_cfg
from ..backbones.bisenetv2 import BiSeNetV2Backbone, dw_norm, residual_last_norms
from ..heads import SegHead
from ..layers import ConvBNAct, get_norm, init_weights
from .base import Segmentor, output_align_corners, resize_logits


class BilateralGuidedAggregation(nn.Module):
    """Each branch gates the other: detail features by upsampled semantic attention at stride 8, and
    semantic features by downsampled detail attention at stride 32; the sum goes through a 3x3 conv."""

    def __init__(self, channels: int = 128, norm: str = "BN") -> None:
        super().__init__()
        c = channels
        self.detail_keep = nn.Sequential(*dw_norm(c, 1, norm), nn.Conv2d(c, c, 1, bias=False))
        self.detail_down = nn.Sequential(
            nn.Conv2d(c, c, 3, 2, 1, bias=False), get_norm(norm, c), nn.AvgPool2d(3, 2, 1)
        )
        self.semantic_up = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), get_norm(norm, c))
        self.semantic_keep = nn.Sequential(*dw_norm(c, 1, norm), nn.Conv2d(c, c, 1, bias=False))
        self.conv = ConvBNAct(c, c, 3, norm=norm)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        size = detail.shape[-2:]
        gate_up = F.interpolate(self.semantic_up(semantic), size=size, mode="nearest")
        low = self.detail_keep(detail) * torch.sigmoid(gate_up)
        high = self.detail_down(detail) * torch.sigmoid(self.semantic_keep(semantic))
        return self.conv(low + F.interpolate(high, size=size, mode="nearest"))


class BiSeNetV2(Segmentor):
    """Detail branch + semantic branch -> aggregation -> head; four booster heads in training."""

    aux_names = ("aux4", "aux8", "aux16", "aux32")
    default_aux_weights = (1.0, 1.0, 1.0, 1.0)
    # The public recipe gives the main head and the booster heads the 10x learning rate; the
    # branches and the aggregation layer train at the base rate.
    # Its branches are a fixed backbone: the zoo backbone keys (output stride, frozen stages, drop path) do not reach
    # it; its weights load into it, and its name may be given for the weight messages (`build_bisenetv2` checks it).
    reads = frozenset({"MODEL.OUTPUT_ALIGN_CORNERS", "MODEL.DROPOUT", "MODEL.BACKBONE.NAME", "MODEL.BACKBONE.WEIGHTS"})
    head_names = ("head", "aux4", "aux8", "aux16", "aux32")

    def __init__(self, num_classes: int, norm: str = "BN", align_corners: bool = False, dropout: float = 0.1,
                 output_align_corners: bool | None = None) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.output_align_corners = align_corners if output_align_corners is None else output_align_corners
        self.backbone = BiSeNetV2Backbone(norm=norm)
        self.bga = BilateralGuidedAggregation(128, norm)
        self.head = SegHead(128, 1024, num_classes, norm, dropout)
        # Booster heads: 128 mid channels; the extra conv after the 2x upsampling has
        # (stride / 2)^2 * 4 = stride^2 channels, as in the public implementation.
        for name, in_ch, stride in zip(self.aux_names, (16, 32, 64, 128), (4, 8, 16, 32)):
            setattr(self, name, SegHead(in_ch, 128, num_classes, norm, dropout, up_channels=stride * stride))
        # Zero-initialised last norm of every gather-and-expand residual branch.
        init_weights(self, zero_init_norms=residual_last_norms(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        size = x.shape[-2:]
        detail, feats = self.backbone.branches(x)
        logits = resize_logits(self.head(self.bga(detail, feats[-1])), size, self.output_align_corners)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training:
            for name, f in zip(self.aux_names, feats[:4]):
                aux[name] = resize_logits(getattr(self, name)(f), size, self.output_align_corners)
        return self.outputs(logits, aux)


# The zoo name of BiSeNetV2's branches (segkit/models/backbones/bisenetv2.py), what its configs set MODEL.BACKBONE.NAME to.
BRANCHES_NAME = "bisenetv2"


def build_bisenetv2(cfg: CfgNode) -> BiSeNetV2:
    name, default = cfg.MODEL.BACKBONE.NAME, get_cfg().MODEL.BACKBONE.NAME
    if name not in (BRANCHES_NAME, default):
        # Any other backbone would be silently replaced by the fixed branches.
        raise ValueError(f"MODEL.BACKBONE.NAME {name!r}: bisenetv2 has its own fixed branches, the zoo backbone "
                         f"{BRANCHES_NAME!r}; set it to {BRANCHES_NAME!r} or leave it at its default {default!r}")
    return BiSeNetV2(
        cfg.MODEL.NUM_CLASSES, norm=cfg.MODEL.NORM, align_corners=cfg.MODEL.ALIGN_CORNERS, dropout=cfg.MODEL.DROPOUT,
        output_align_corners=output_align_corners(cfg),
    )
