"""Segmentation heads, one family per file; the segmentors in `segmentors/` assemble them on a body.

fcn.py: FCNHead · psp.py: PyramidPooling, PSPHead · aspp.py: ImagePooling, ASPP, Decoder (DeepLabV3+) ·
bisenet.py: SegHead, AttentionRefinement, FeatureFusion (also STDC-Seg's) · ddrnet.py: DAPPM, PAPPM, DDRHead
(DDRNet, PIDNet; PIDNet's boundary head is a one-class DDRHead). Heads are initialised by their segmentor with
`segkit.models.layers.init_weights`.
"""
from .aspp import ASPP, Decoder, ImagePooling
from .bisenet import AttentionRefinement, FeatureFusion, SegHead
from .ddrnet import DAPPM, PAPPM, DDRHead
from .fcn import FCNHead
from .psp import PSPHead, PyramidPooling

__all__ = ["ASPP", "AttentionRefinement", "DAPPM", "DDRHead", "Decoder", "FCNHead", "FeatureFusion", "ImagePooling",
           "PAPPM", "PSPHead", "PyramidPooling", "SegHead"]
