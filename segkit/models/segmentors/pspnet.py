"""PSPNet (Zhao et al., 2017) on a dilated backbone: pyramid pooling over c5, an auxiliary head on c4.

The published Cityscapes recipe pools c5 into 1x1, 2x2, 3x3 and 6x6 bins, projects each to 512
channels, upsamples them back, concatenates them with c5 and fuses with a 3x3 conv of 512
channels, then dropout 0.1 and the classifier. Everything but the decode head is FCN's.
"""
from __future__ import annotations

from yacs.config import CfgNode

from ..backbones import backbone_from_cfg
from ..heads import PSPHead
from .base import ZOO_BACKBONE_KEYS
from .fcn import FCN


class PSPNet(FCN):
    """FCN with a PSP decode head (same backbone handling, auxiliary head and head marking)."""

    # FCN's aux head keys; the PSP decode head reads PPM_BINS, not FCN's FCN_NUM_CONVS / FCN_CONCAT_INPUT.
    reads = ZOO_BACKBONE_KEYS | {"MODEL.DROPOUT", "MODEL.AUX_CHANNELS", "MODEL.HEAD_CHANNELS", "MODEL.PPM_BINS"}


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
