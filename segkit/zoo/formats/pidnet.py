"""Official PIDNet checkpoints (github.com/XuJiacong/PIDNet): PIDNet-S/M/L on Cityscapes and CamVid.

The published .pt files are the trainer's FullModel state_dict: the network (built with augment=True, so with
the P and D heads seghead_p / seghead_d) under "model.", and on Cityscapes the loss modules' class weights
("sem_loss.criterion.weight", ...), which `unwrap` drops. The official evaluation normalises with the ImageNet
mean/std, runs the whole frame at scale 1 without flip, and resizes the logits to the label size with
align_corners=True (MODEL.OUTPUT_ALIGN_CORNERS in the configs) while every resize inside the network uses False.

The CamVid files (11 classes) predict the classes in the official camvid.py order, the CamVid colour table sorted
by name (Bicyclist, Building, Car, Pole, Fence, Pedestrian, Road, Sidewalk, SignSymbol, Sky, Tree); the converter
reorders their class outputs into segkit's SegNet order (segkit.data.camvid.CAMVID_CLASSES). The official runs
use the 960x720 frames; segkit's CamVid is the SegNet layout at 480x360.
"""
from __future__ import annotations

from functools import partial
from typing import Mapping

import torch

from .base import OfficialFormat
from .protocol import IMAGENET_MEAN, IMAGENET_STD, Protocol
from .rules import P, conv_bn, convert_with, ddr_head, preact, pyramid_pooling, residual_block

SOURCE = "official PIDNet (github.com/XuJiacong/PIDNet)"


def _rules(light: bool) -> list:
    """PIDNet-S/M (`light`: PAPPM, the light Bag, a bottleneck D stage 4) or PIDNet-L."""
    rules = [
        (rf"conv1\.0\.(?P<q>weight|bias)", r"stem.0.conv.\g<q>"), (rf"conv1\.1\.{P}", r"stem.0.bn.\g<p>"),
        (rf"conv1\.3\.(?P<q>weight|bias)", r"stem.1.conv.\g<q>"), (rf"conv1\.4\.{P}", r"stem.1.bn.\g<p>"),
    ]
    # I branch, P branch (layerN_ -> p_layerN), D branch (layerN_d -> d_layerN; one block each, no index).
    rules += residual_block(r"layer(?P<l>[1-4])\.(?P<b>\d+)", r"layer\g<l>.\g<b>", bottleneck=False)
    rules += residual_block(r"layer5\.(?P<b>\d+)", r"layer5.\g<b>", bottleneck=True)
    rules += residual_block(r"layer(?P<l>[34])_\.(?P<b>\d+)", r"p_layer\g<l>.\g<b>", bottleneck=False)
    rules += residual_block(r"layer5_\.(?P<b>\d+)", r"p_layer5.\g<b>", bottleneck=True)
    rules += residual_block(r"layer3_d", "d_layer3", bottleneck=False)
    rules += residual_block(r"layer4_d\.0", "d_layer4", bottleneck=True) if light else \
        residual_block(r"layer4_d", "d_layer4", bottleneck=False)
    rules += residual_block(r"layer5_d\.0", "d_layer5", bottleneck=True)
    for n in (3, 4):
        rules += conv_bn(rf"compression{n}\.0", rf"compression{n}\.1", f"compress{n}")
        rules += conv_bn(rf"diff{n}\.0", rf"diff{n}\.1", f"diff{n}")
        # f_x embeds the P features, f_y the I features.
        rules += conv_bn(rf"pag{n}\.f_x\.0", rf"pag{n}\.f_x\.1", f"pag{n}.embed_p")
        rules += conv_bn(rf"pag{n}\.f_y\.0", rf"pag{n}\.f_y\.1", f"pag{n}.embed_i")
    rules += pyramid_pooling(r"spp", "spp", parallel=light)
    if light:
        rules += conv_bn(r"dfm\.conv_p\.0", r"dfm\.conv_p\.1", "bag.proj_p")
        rules += conv_bn(r"dfm\.conv_i\.0", r"dfm\.conv_i\.1", "bag.proj_i")
    else:
        rules += preact(r"dfm\.conv", "bag.conv")
    rules += ddr_head(r"final_layer", "head") + ddr_head(r"seghead_p", "aux_p") + ddr_head(r"seghead_d", "boundary")
    return rules


# For each class of segkit's CamVid order (Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car,
# Pedestrian, Bicyclist), its index in the official CamVid order.
CAMVID_ORDER = (9, 1, 3, 6, 7, 10, 8, 4, 2, 5, 0)
CLASS_KEYS = ("head.classifier.2.weight", "head.classifier.2.bias", "aux_p.classifier.2.weight", "aux_p.classifier.2.bias")


def convert_pidnet(state_dict: Mapping[str, torch.Tensor], light: bool) -> dict[str, torch.Tensor]:
    out = convert_with(state_dict, _rules(light))
    if out["head.classifier.2.weight"].shape[0] == len(CAMVID_ORDER):  # the official CamVid checkpoints
        order = torch.tensor(CAMVID_ORDER)
        out.update({k: out[k].index_select(0, order) for k in CLASS_KEYS})
    return out


RECORDS = [
    OfficialFormat("pidnet", SOURCE, f"pidnet_{size}", f"cityscapes/pidnet_{size}.yaml", f"pidnet_{size}.json",
                   partial(convert_pidnet, light=size != "l"))
    for size in ("s", "m", "l")
]


def _protocol(config: str, frame: str) -> Protocol:
    return Protocol(config, IMAGENET_MEAN, IMAGENET_STD, 1.0, False, True,
                    f"tools/eval.py: the whole {frame} frame at scale 1, no flip, logits resized with align_corners=True")


# By zoo entry: the published val (Cityscapes) and test (CamVid) figures.
PROTOCOLS = {
    **{f"pidnet_{s}_cityscapes": _protocol(f"cityscapes/pidnet_{s}.yaml", "1024x2048") for s in ("s", "m", "l")},
    # The official CamVid frames are 960x720; segkit's SegNet-layout CamVid is 480x360 (a different protocol).
    **{f"pidnet_{s}_camvid": _protocol(f"camvid/pidnet_{s}.yaml", "960x720") for s in ("s", "m")},
}
