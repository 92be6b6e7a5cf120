"""The BiSeNet heads: SegHead (V1's output and auxiliary heads, V2's head and booster heads), and V1's
AttentionRefinement (on the context path) and FeatureFusion (spatial + context) modules."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import ConvBNAct, get_norm


def _channel_attention(channels: int, norm: str) -> nn.Sequential:
    """1x1 conv (no bias), norm, sigmoid: per-channel weights from globally pooled features."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), get_norm(norm, channels), nn.Sigmoid())


class SegHead(nn.Module):
    """3x3 conv-norm-ReLU to `mid_channels`, optional (element-wise) dropout, 1x1 classifier (the BiSeNet output heads).

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
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels, mid_channels, 3, norm=norm)
        # Element-wise dropout, as the public BiSeNetV2 (its only user) drops its head features.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.up_conv = ConvBNAct(mid_channels, up_channels, 3, norm=norm) if up_channels else None
        self.classifier = nn.Conv2d(up_channels or mid_channels, num_classes, 1, bias=bias)  # STDC-Seg: no bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.conv(x))
        if self.up_conv is not None:
            x = self.up_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.classifier(x)


class AttentionRefinement(nn.Module):
    """3x3 conv, then channel attention from the pooled features (1x1 conv, norm, sigmoid) multiplied on."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "BN") -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels, out_channels, 3, norm=norm)
        self.attention = _channel_attention(out_channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.attention(x.mean((2, 3), keepdim=True))


class FeatureFusion(nn.Module):
    """Concatenate spatial and context features, 1x1 conv, add back a channel-attention-weighted copy.

    The attention is a 1x1 conv + norm (the BiSeNetV1 reproduction), or with `reduction` r the BiSeNet
    paper's two bias-free 1x1 convs through channels / r with a ReLU between (STDC-Seg).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "BN", reduction: int | None = None) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels, out_channels, 1, norm=norm)
        if reduction:
            mid = out_channels // reduction
            self.attention = nn.Sequential(
                nn.Conv2d(out_channels, mid, 1, bias=False), nn.ReLU(inplace=True),
                nn.Conv2d(mid, out_channels, 1, bias=False), nn.Sigmoid(),
            )
        else:
            self.attention = _channel_attention(out_channels, norm)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([spatial, context], dim=1))
        return x + x * self.attention(x.mean((2, 3), keepdim=True))
