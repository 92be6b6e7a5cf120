"""CoinCheung/BiSeNet release checkpoints (github.com/CoinCheung/BiSeNet/releases/tag/0.0.0): BiSeNetV1
(ResNet-18) and BiSeNetV2.

The released files are the bare state_dict of the training model (aux_mode "train": BiSeNetV1's two auxiliary
heads conv_out16/conv_out32, BiSeNetV2's four booster heads aux2..aux5_4), as tools/evaluate.py loads them
strictly. Evaluation protocol of the published single-scale figures (tools/evaluate.py): inputs normalised with
the Cityscapes mean (0.3257, 0.3690, 0.3223) and std (0.2112, 0.2148, 0.2115) (RGB), the whole 1024x2048 frame
at scale 1.0 (rounded up to a multiple of 32), no flip, logits resized to the label with align_corners=True
(a no-op at scale 1: the network's own upsampling, align_corners=False, already reaches the input size).
"""
from __future__ import annotations

from typing import Mapping

import torch

from ...models.convert.resnet import convert_resnet
from .base import OfficialFormat
from .protocol import Protocol
from .rules import P, conv_bn, convert_with

SOURCE = "CoinCheung/BiSeNet (github.com/CoinCheung/BiSeNet)"


def _cbr(src: str, dst: str) -> list:
    """The repository's ConvBNReLU (conv, bn) into segkit's ConvBNAct."""
    return conv_bn(rf"{src}\.conv", rf"{src}\.bn", dst)


def _output(src: str, dst: str) -> list:
    """BiSeNetOutput / SegmentHead's 3x3 ConvBNReLU and 1x1 classifier into segkit's SegHead."""
    return _cbr(rf"{src}\.conv", f"{dst}.conv")


def _v1_rules() -> list:
    rules = [r for i in range(3) for r in _cbr(rf"sp\.conv{i + 1}", f"spatial.{i}")] + _cbr(r"sp\.conv_out", "spatial.3")
    for arm in ("arm16", "arm32"):
        rules += _cbr(rf"cp\.{arm}\.conv", f"context.{arm}.conv")
        rules += [(rf"cp\.{arm}\.conv_atten\.weight", f"context.{arm}.attention.0.weight"),
                  (rf"cp\.{arm}\.bn_atten\.{P}", rf"context.{arm}.attention.1.\g<p>")]
    rules += _cbr(r"cp\.conv_head32", "context.refine32") + _cbr(r"cp\.conv_head16", "context.refine16")
    rules += _cbr(r"cp\.conv_avg", "context.global_context") + _cbr(r"ffm\.convblk", "ffm.conv")
    rules += [(r"ffm\.conv\.weight", "ffm.attention.0.weight"), (rf"ffm\.bn\.{P}", r"ffm.attention.1.\g<p>")]
    for src, dst in (("conv_out", "head"), ("conv_out16", "aux16"), ("conv_out32", "aux32")):
        rules += _cbr(rf"{src}\.conv", f"{dst}.conv") + [(rf"{src}\.conv_out\.(?P<q>weight|bias)", rf"{dst}.classifier.\g<q>")]
    return rules


def convert_bisenetv1(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # The context path's ResNet-18 has torchvision's names under "cp.resnet.": the ResNet converter renames it.
    backbone = {k[len("cp.resnet."):]: v for k, v in state_dict.items() if k.startswith("cp.resnet.")}
    rest = {k: v for k, v in state_dict.items() if not k.startswith("cp.resnet.")}
    return {**convert_resnet(backbone), **convert_with(rest, _v1_rules())}


def _ge_layer(src: str, dst: str) -> list:
    """A gather-and-expand layer: conv1, the depthwise conv(s), the 1x1 projection conv2, the shortcut."""
    return [
        *_cbr(rf"{src}\.conv1", f"{dst}.conv1"),
        (rf"{src}\.dwconv\.(?P<i>[01])\.{P}", rf"{dst}.dwconv.\g<i>.\g<p>"),  # stride 1: one depthwise conv
        (rf"{src}\.dwconv1\.(?P<i>[01])\.{P}", rf"{dst}.dwconv.\g<i>.\g<p>"),  # stride 2: two, kept in one list
        (rf"{src}\.dwconv2\.0\.{P}", rf"{dst}.dwconv.2.\g<p>"), (rf"{src}\.dwconv2\.1\.{P}", rf"{dst}.dwconv.3.\g<p>"),
        (rf"{src}\.conv2\.(?P<i>[01])\.{P}", rf"{dst}.proj.\g<i>.\g<p>"),
        (rf"{src}\.shortcut\.(?P<i>[0-3])\.{P}", rf"{dst}.shortcut.\g<i>.\g<p>"),
    ]


def _v2_rules() -> list:
    rules = []
    for stage, first in (("S1", 0), ("S2", 2), ("S3", 5)):  # the detail branch, one list in segkit
        rules += [(rf"detail\.{stage}\.(?P<i>\d)\.(?P<m>conv|bn)\.{P}",
                   lambda m, first=first: f"backbone.detail.{first + int(m['i'])}.{m['m']}.{m['p']}")]
    rules += [(rf"segment\.S1S2\.(?P<rest>.+)", r"backbone.semantic.stem.\g<rest>")]
    for src, dst in (("S3", "s3"), ("S4", "s4"), ("S5_4", "s5")):
        rules += _ge_layer(rf"segment\.{src}\.(?P<b>\d)", rf"backbone.semantic.{dst}.\g<b>")
    rules += [(rf"segment\.S5_5\.bn\.{P}", r"backbone.semantic.ce.norm.\g<p>"),
              (r"segment\.S5_5\.(?P<rest>conv_(gap|last)\..+)", r"backbone.semantic.ce.\g<rest>")]
    for src, dst in (("left1", "detail_keep"), ("left2", "detail_down"), ("right1", "semantic_up"), ("right2", "semantic_keep")):
        rules += [(rf"bga\.{src}\.(?P<rest>.+)", rf"bga.{dst}.\g<rest>")]
    rules += conv_bn(r"bga\.conv\.0", r"bga\.conv\.1", "bga.conv")
    rules += _cbr(r"head\.conv", "head.conv") + [(r"head\.conv_out\.1\.(?P<q>weight|bias)", r"head.classifier.\g<q>")]
    for src, dst in (("aux2", "aux4"), ("aux3", "aux8"), ("aux4", "aux16"), ("aux5_4", "aux32")):
        rules += _cbr(rf"{src}\.conv", f"{dst}.conv") + _cbr(rf"{src}\.conv_out\.0\.1", f"{dst}.up_conv")
        rules += [(rf"{src}\.conv_out\.1\.(?P<q>weight|bias)", rf"{dst}.classifier.\g<q>")]
    return rules


def convert_bisenetv2(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return convert_with(state_dict, _v2_rules())


RECORDS = [
    OfficialFormat("coincheung", SOURCE, "bisenetv1", "cityscapes/bisenetv1_r18_coincheung.yaml", "coincheung_bisenetv1.json",
                   convert_bisenetv1),
    OfficialFormat("coincheung", SOURCE, "bisenetv2", "cityscapes/bisenetv2_coincheung.yaml", "coincheung_bisenetv2.json",
                   convert_bisenetv2),
]

CITYSCAPES_MEAN = (0.3257, 0.3690, 0.3223)  # lib/data/cityscapes_cv2.py, RGB
CITYSCAPES_STD = (0.2112, 0.2148, 0.2115)
PROTOCOLS = {
    f"{v}_cityscapes": Protocol(f"cityscapes/{v}{tail}_coincheung.yaml", CITYSCAPES_MEAN, CITYSCAPES_STD, 1.0, False,
                                False, "tools/evaluate.py single scale (MscEvalV0, scales=(1.0,), flip=False): the "
                                "whole 1024x2048 frame, the network's own upsampling (align_corners=False) to it")
    for v, tail in (("bisenetv1", "_r18"), ("bisenetv2", ""))
}
