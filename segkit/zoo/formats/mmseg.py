"""mmsegmentation's Cityscapes checkpoints of FCN, PSPNet and DeepLabV3+ on ResNetV1c-50-D8 -> segkit.

mmsegmentation saves {"meta": {...}, "state_dict": {...}} (`unwrap` strips the wrapper). Its keys, taken
from mmseg's model code (EncoderDecoder with `backbone`, `decode_head` and `auxiliary_head`):

- backbone (ResNetV1c): the deep stem as one Sequential `stem.{0,1,3,4,6,7}` (conv, BN, ReLU three times),
  then torchvision's block names (`layerN.M.convK`/`bnK`, shortcut `downsample.{0,1}`), which segkit's
  torchvision/timm ResNet rules already rename;
- every conv-BN-ReLU is a ConvModule `.conv`/`.bn`, as segkit's ConvBNAct, and every classifier `conv_seg`;
- auxiliary_head: FCNHead on c4 (`convs.0`, `conv_seg`), segkit's `aux`;
- decode_head: FCNHead (`convs.0-1`, the input fusion `conv_cat`), PSPHead (`psp_modules.I.1`, `bottleneck`),
  or DepthwiseSeparableASPPHead (`image_pool.1`, `aspp_modules.0` the 1x1 and `.1-3` the separable
  `depthwise_conv`/`pointwise_conv`, `bottleneck`, `c1_bottleneck` for c2, `sep_bottleneck.0-1`).

Only names change: each official layer has the same shape and computation in segkit's model of the config.
Checked against mmsegmentation 1.2.2's own models (random weights and BN statistics, outside the repository):
the converted models give mmseg's outputs bit for bit (max |diff| 0) in eval mode (whole-image inference) and
in train mode (decode and auxiliary logits resized to the label size, as its loss sees them), at 512x1024 and
360x480.
"""
from __future__ import annotations

from functools import partial

from ...models.convert.resnet import COMMON_RULES, STRIDED_SHORTCUT_RULES
from .base import OfficialFormat
from .protocol import IMAGENET_MEAN, IMAGENET_STD, Protocol
from .rules import convert_with

Rules = list[tuple[str, str]]

SOURCE = "mmsegmentation (github.com/open-mmlab/mmsegmentation)"

STEM_RULES: Rules = [
    (rf"backbone\.stem\.{conv}\.weight", f"backbone.stem.conv{i}.conv.weight")
    for i, conv in enumerate((0, 3, 6), start=1)
] + [
    (rf"backbone\.stem\.{bn}\.(\w+)", rf"backbone.stem.conv{i}.bn.\1")
    for i, bn in enumerate((1, 4, 7), start=1)
]
# Below the stem the blocks are named as torchvision's, one level down under `backbone.`.
BACKBONE_RULES: Rules = STEM_RULES + [
    (r"backbone\." + pattern, repl) for pattern, repl in STRIDED_SHORTCUT_RULES + COMMON_RULES
]
AUX_RULES: Rules = [
    (r"auxiliary_head\.convs\.0\.(conv|bn)\.(\w+)", r"aux.convs.0.\1.\2"),
    (r"auxiliary_head\.conv_seg\.(\w+)", r"aux.classifier.\1"),
]
FCN_RULES: Rules = [
    (r"decode_head\.convs\.(\d+)\.(conv|bn)\.(\w+)", r"decode_head.convs.\1.\2.\3"),
    (r"decode_head\.conv_cat\.(conv|bn)\.(\w+)", r"decode_head.fuse.\1.\2"),
    (r"decode_head\.conv_seg\.(\w+)", r"decode_head.classifier.\1"),
]
PSP_RULES: Rules = [
    (r"decode_head\.psp_modules\.(\d+)\.1\.(conv|bn)\.(\w+)", r"decode_head.ppm.stages.\1.1.\2.\3"),
    (r"decode_head\.bottleneck\.(conv|bn)\.(\w+)", r"decode_head.bottleneck.\1.\2"),
    (r"decode_head\.conv_seg\.(\w+)", r"decode_head.classifier.\1"),
]
SEPARABLE = r"(depthwise|pointwise)_conv\.(conv|bn)\.(\w+)"
# segkit's ASPP lists its branches 1x1, separable 3x3 per rate, image pooling last (index 1 + 3 rates).
ASPP_POOL_INDEX = 4
DEEPLABV3PLUS_RULES: Rules = [
    (r"decode_head\.image_pool\.1\.(conv|bn)\.(\w+)", rf"aspp.branches.{ASPP_POOL_INDEX}.conv.\1.\2"),
    (r"decode_head\.aspp_modules\.0\.(conv|bn)\.(\w+)", r"aspp.branches.0.\1.\2"),
    (r"decode_head\.aspp_modules\.([1-3])\." + SEPARABLE, r"aspp.branches.\1.\2.\3.\4"),
    (r"decode_head\.bottleneck\.(conv|bn)\.(\w+)", r"aspp.project.\1.\2"),
    (r"decode_head\.c1_bottleneck\.(conv|bn)\.(\w+)", r"decoder.low_proj.\1.\2"),
    (r"decode_head\.sep_bottleneck\.([01])\." + SEPARABLE, r"decoder.fuse.\1.\2.\3.\4"),
    (r"decode_head\.conv_seg\.(\w+)", r"decoder.classifier.\1"),
]


def _record(variant: str, head_rules: Rules) -> OfficialFormat:
    return OfficialFormat(
        name="mmseg", source=SOURCE, variant=variant, config=f"cityscapes/{variant}.yaml",
        manifest=f"mmseg_{variant}.json",
        convert=partial(convert_with, rules=BACKBONE_RULES + head_rules + AUX_RULES),
    )


RECORDS: list[OfficialFormat] = [
    _record("fcn_r50_d8", FCN_RULES),
    _record("pspnet_r50_d8", PSP_RULES),
    _record("deeplabv3plus_r50_d8", DEEPLABV3PLUS_RULES),
]

# The published single-scale figures (mmseg's tools/test.py with the 512x1024 configs, as trained): the whole
# frame, test_cfg mode="whole", no padding, no flip; the protocol record and its config say the same.
PROTOCOLS = {
    f"{record.variant}_cityscapes": Protocol(
        record.config, IMAGENET_MEAN, IMAGENET_STD, 1.0, False, False,
        "mmseg tools/test.py, test_cfg mode='whole': the 1024x2048 frame (Resize to 2048x1024 keeping the ratio: "
        "scale 1), RGB (to_rgb) normalised by mean 123.675/116.28/103.53 and std 58.395/57.12/57.375, not padded, "
        "no flip, logits resized with align_corners=False",
    )
    for record in RECORDS
}
