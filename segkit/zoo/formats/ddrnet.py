"""Official DDRNet checkpoints (github.com/ydhongHIT/DDRNet): DDRNet-23-slim and DDRNet-23 on Cityscapes.

The Cityscapes files linked from that README (trained with the HRNet code base, evaluated by
github.com/chenjun2hao/DDRNet.pytorch with the same model code) hold the network built with augment=True
(the auxiliary head seghead_extra) under "model.", next to the loss module's class weights, which `unwrap`
drops. The network is segmentation/DDRNet_23_slim.py / DDRNet_23.py of the official repository. Evaluation:
ImageNet mean/std, the whole 1024x2048 frame at scale 1, no flip, align_corners=False everywhere (its README:
"Keep align_corners=False in all places if you want to use our pretrained models").
"""
from __future__ import annotations

from functools import partial
from typing import Mapping

import torch

from .base import OfficialFormat
from .protocol import IMAGENET_MEAN, IMAGENET_STD, Protocol
from .rules import P, conv_bn, convert_with, ddr_head, pyramid_pooling, residual_block

SOURCE = "official DDRNet (github.com/ydhongHIT/DDRNet)"


def _rules() -> list:
    rules = [
        (r"conv1\.0\.(?P<q>weight|bias)", r"stem.0.conv.\g<q>"), (rf"conv1\.1\.{P}", r"stem.0.bn.\g<p>"),
        (r"conv1\.3\.(?P<q>weight|bias)", r"stem.1.conv.\g<q>"), (rf"conv1\.4\.{P}", r"stem.1.bn.\g<p>"),
    ]
    rules += residual_block(r"layer(?P<l>[12])\.(?P<b>\d+)", r"layer\g<l>.\g<b>", bottleneck=False)
    # Stages 3 and 4 of both branches: layerN (low resolution) and layerN_ (high), fused by downN / compressionN.
    for n, stage in ((3, "stage3.0"), (4, "stage4")):
        rules += residual_block(rf"layer{n}\.(?P<b>\d+)", rf"{stage}.low.\g<b>", bottleneck=False)
        rules += residual_block(rf"layer{n}_\.(?P<b>\d+)", rf"{stage}.high.\g<b>", bottleneck=False)
        rules += conv_bn(rf"compression{n}\.0", rf"compression{n}\.1", f"{stage}.compress")
    rules += conv_bn(r"down3\.0", r"down3\.1", "stage3.0.down.0")
    rules += conv_bn(r"down4\.0", r"down4\.1", "stage4.down.0") + conv_bn(r"down4\.3", r"down4\.4", "stage4.down.1")
    rules += residual_block(r"layer5_\.(?P<b>\d+)", r"high5.\g<b>", bottleneck=True)
    rules += residual_block(r"layer5\.(?P<b>\d+)", r"low5.\g<b>", bottleneck=True)
    rules += pyramid_pooling(r"spp", "spp", parallel=False)
    return rules + ddr_head(r"final_layer", "head") + ddr_head(r"seghead_extra", "aux")


def convert_ddrnet(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return convert_with(state_dict, _rules())


RECORDS = [
    OfficialFormat("ddrnet", SOURCE, variant, f"cityscapes/{variant}.yaml", f"{variant}.json", convert_ddrnet)
    for variant in ("ddrnet_23_slim", "ddrnet_23")
]

PROTOCOLS = {
    f"{v}_cityscapes": Protocol(f"cityscapes/{v}.yaml", IMAGENET_MEAN, IMAGENET_STD, 1.0, False, False,
                                "HRNet-style test (DDRNet.pytorch tools/eval.py): the whole 1024x2048 frame at "
                                "scale 1, no flip, align_corners=False everywhere")
    for v in ("ddrnet_23_slim", "ddrnet_23")
}
