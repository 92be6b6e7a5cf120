"""FCNHead: the conv decode head of FCN and the auxiliary head of FCN and PSPNet.

Every head in this package returns logits (or, for building blocks, features) at its input's
resolution; the segmentor resizes logits to the image (`segmentors.base.resize_logits`), so a head
never needs to know the input size.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvBNAct


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
