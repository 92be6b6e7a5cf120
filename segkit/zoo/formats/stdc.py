"""Official STDC-Seg checkpoints (github.com/MichaelFan01/STDC-Seg): STDC1/STDC2-Seg50 and -Seg75 on Cityscapes.

Seg50 and Seg75 are the same network evaluated at 0.5 / 0.75 of the frame: one format per backbone, the zoo
entry names the config with the scale. The released files are the bare state_dict of the training model built
with use_boundary_8 (train.py saves net.module.state_dict()): besides the network they hold the backbone's
ImageNet classifier (conv_last, fc, bn, linear), the unused detail heads conv_out_sp2/sp4/sp16, and every
backbone stage a second time under x2..x32 (Sequentials that share the modules of `features`); the converter
drops those. The heads' norms are in-place ABN layers, which store no num_batches_tracked (it is added as 0).
Evaluation (evaluation.py, MscEvalV0): ImageNet mean/std, the frame resized by the scale with bilinear
align_corners=True, the logits (upsampled in the network with align_corners=True) resized to the label with True,
no flip.
"""
from __future__ import annotations

from functools import partial
from typing import Mapping

import torch

from .base import OfficialFormat
from .protocol import IMAGENET_MEAN, IMAGENET_STD, Protocol
from .rules import P, add_bn_counters, conv_bn, convert_with

SOURCE = "official STDC-Seg (github.com/MichaelFan01/STDC-Seg)"
STAGES = {"stdc1": (2, 2, 2), "stdc2": (4, 5, 3)}  # modules per stage: STDCNet813, STDCNet1446

# Training-only or duplicate entries of the released files.
DROP = (
    r"cp\.backbone\.x(2|4|8|16|32)\..+",  # the same tensors as cp.backbone.features.*
    r"cp\.backbone\.(conv_last|fc|bn|linear)\..+",  # the ImageNet classifier
    r"conv_out_sp(2|4|16)\..+",  # detail heads the published runs do not train (use_boundary_8 only)
)


def _feature_name(index: int, stages: tuple[int, ...]) -> str:
    """segkit's name of the backbone's features[index]: stem, layer1, then layerN.j of the module stages."""
    if index < 2:
        return ("stem", "layer1")[index]
    index -= 2
    for stage, count in enumerate(stages, start=2):
        if index < count:
            return f"layer{stage}.{index}"
        index -= count
    raise ValueError(f"cp.backbone.features.{index} is beyond the {sum(stages) + 2} features of this STDC network")


def _rules(stages: tuple[int, ...]) -> list:
    feature = r"cp\.backbone\.features\.(?P<f>\d+)"

    def name(m) -> str:
        return "backbone." + _feature_name(int(m["f"]), stages)

    rules = [
        (rf"{feature}\.(?P<m>conv|bn)\.{P}", lambda m: f"{name(m)}.{m['m']}.{m['p']}"),  # stem and layer1: ConvX
        (rf"{feature}\.conv_list\.0\.(?P<m>conv|bn)\.{P}", lambda m: f"{name(m)}.first.{m['m']}.{m['p']}"),
        (rf"{feature}\.conv_list\.(?P<i>[1-9])\.(?P<m>conv|bn)\.{P}",
         lambda m: f"{name(m)}.steps.{int(m['i']) - 1}.{m['m']}.{m['p']}"),
        (rf"{feature}\.avd_layer\.0\.weight", lambda m: f"{name(m)}.avd.conv.weight"),
        (rf"{feature}\.avd_layer\.1\.{P}", lambda m: f"{name(m)}.avd.bn.{m['p']}"),
    ]
    for arm in ("arm16", "arm32"):
        rules += conv_bn(rf"cp\.{arm}\.conv\.conv", rf"cp\.{arm}\.conv\.bn", f"context.{arm}.conv")
        rules += [(rf"cp\.{arm}\.conv_atten\.weight", f"context.{arm}.attention.0.weight"),
                  (rf"cp\.{arm}\.bn_atten\.{P}", rf"context.{arm}.attention.1.\g<p>")]
    for src, dst in (("conv_head32", "refine32"), ("conv_head16", "refine16"), ("conv_avg", "global_context")):
        rules += conv_bn(rf"cp\.{src}\.conv", rf"cp\.{src}\.bn", f"context.{dst}")
    rules += conv_bn(r"ffm\.convblk\.conv", r"ffm\.convblk\.bn", "ffm.conv")
    rules += [(r"ffm\.conv1\.weight", "ffm.attention.0.weight"), (r"ffm\.conv2\.weight", "ffm.attention.2.weight")]
    for src, dst in (("conv_out", "head"), ("conv_out16", "aux16"), ("conv_out32", "aux32"), ("conv_out_sp8", "detail")):
        rules += conv_bn(rf"{src}\.conv\.conv", rf"{src}\.conv\.bn", f"{dst}.conv")
        rules += [(rf"{src}\.conv_out\.weight", f"{dst}.classifier.weight")]
    return rules


def convert_stdc(state_dict: Mapping[str, torch.Tensor], backbone: str) -> dict[str, torch.Tensor]:
    return add_bn_counters(convert_with(state_dict, _rules(STAGES[backbone]), drop=DROP))


RECORDS = [
    OfficialFormat("stdc", SOURCE, backbone, f"cityscapes/{backbone}_seg50.yaml", f"stdc_{backbone}.json",
                   partial(convert_stdc, backbone=backbone))
    for backbone in STAGES
]

PROTOCOLS = {
    f"{b}_seg{s}_cityscapes": Protocol(f"cityscapes/{b}_seg{s}.yaml", IMAGENET_MEAN, IMAGENET_STD, s / 100, False, True,
                                       f"evaluation.py MscEvalV0(scale={s / 100}): the frame resized with "
                                       "align_corners=True, logits resized back with True, no flip")
    for b in STAGES for s in (50, 75)
}
