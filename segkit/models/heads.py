"""Pieces shared by the segmentors: prediction heads, head initialisation, backbone building from the config.

Every head returns logits at its input's resolution; the segmentor resizes them to the image
(`segmentors.base.resize_logits`), so a head never needs to know the input size.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from .backbones import Backbone, build_backbone
from .layers import ConvBNAct


def backbone_from_cfg(cfg: CfgNode, output_stride: int | None = None) -> Backbone:
    """The zoo backbone MODEL.BACKBONE describes, normed by MODEL.NORM.

    `output_stride` overrides MODEL.BACKBONE.OUTPUT_STRIDE for models whose architecture fixes it.
    DROP_PATH_RATE is passed only when set, since only some families have stochastic depth.
    """
    b = cfg.MODEL.BACKBONE
    kwargs = {"drop_path_rate": b.DROP_PATH_RATE} if b.DROP_PATH_RATE > 0 else {}
    return build_backbone(
        b.NAME,
        output_stride=output_stride or b.OUTPUT_STRIDE,
        norm=cfg.MODEL.NORM,
        frozen_stages=b.FROZEN_STAGES,
        **kwargs,
    )


class SegHead(nn.Module):
    """3x3 conv-norm-ReLU to `mid_channels`, optional dropout, 1x1 classifier (the BiSeNet output heads).

    With `up_channels`, the features are upsampled 2x (nearest) and passed through one more 3x3
    conv-norm-ReLU of that width before the classifier: BiSeNetV2's booster heads predict from a
    finer grid than their input this way.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        num_classes: int,
        norm: str = "BN",
        dropout: float = 0.0,
        up_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels, mid_channels, 3, norm=norm)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.up_conv = ConvBNAct(mid_channels, up_channels, 3, norm=norm) if up_channels else None
        self.classifier = nn.Conv2d(up_channels or mid_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.conv(x))
        if self.up_conv is not None:
            x = self.up_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.classifier(x)


class FCNHead(nn.Module):
    """`num_convs` 3x3 conv-norm-ReLU of `channels`, optionally a 3x3 fusion with the input, dropout, classifier.

    `concat_input` concatenates the head's input with the conv output and fuses them with one more
    3x3 conv, as the published FCN-D8 decode head does; auxiliary heads use one conv and no concat.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_classes: int,
        num_convs: int = 2,
        concat_input: bool = False,
        dropout: float = 0.1,
        norm: str = "BN",
    ) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"FCNHead needs at least one conv, got num_convs={num_convs}")
        self.convs = nn.Sequential(
            *[ConvBNAct(in_channels if i == 0 else channels, channels, 3, norm=norm) for i in range(num_convs)]
        )
        self.fuse = ConvBNAct(in_channels + channels, channels, 3, norm=norm) if concat_input else None
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x)
        if self.fuse is not None:
            y = self.fuse(torch.cat([x, y], dim=1))
        return self.classifier(self.dropout(y))


def init_head_weights(module: nn.Module, zero_init_names: tuple[str, ...] = ()) -> None:
    """Kaiming-normal (fan_out) convs with zero bias, unit norm weights with zero bias.

    Norm layers whose qualified name ends with one of `zero_init_names` start at weight 0, so a
    residual branch starts as the identity (BiSeNetV2's gather-and-expand layers).
    """
    for name, m in module.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm)) and m.weight is not None:
            zero = any(name.endswith(z) for z in zero_init_names)
            nn.init.constant_(m.weight, 0.0 if zero else 1.0)
            nn.init.zeros_(m.bias)
