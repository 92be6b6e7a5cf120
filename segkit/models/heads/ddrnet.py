"""DDRNet's and PIDNet's heads: the pyramid pooling modules DAPPM and PAPPM, and the pre-activation DDRHead.

Both pooling modules and the head are built from pre-activation units (norm, ReLU, conv without bias), as in
the published DDRNet; PIDNet-S/M use the parallel PAPPM, PIDNet-L and every DDRNet the sequential DAPPM.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import get_norm


def preact_conv(in_channels: int, out_channels: int, kernel_size: int, norm: str = "BN", groups: int = 1) -> nn.Sequential:
    """norm -> ReLU -> conv (no bias, 'same' padding): the unit every module here is made of."""
    return nn.Sequential(
        get_norm(norm, in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=False),
    )


class _PyramidPoolingBase(nn.Module):
    """The branches DAPPM and PAPPM share: the input itself and four poolings (strides 2, 4, 8, global),
    each reduced to `branch_channels` by a 1x1 unit; a 1x1 shortcut from the input to `out_channels`."""

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int, norm: str, align_corners: bool):
        super().__init__()
        self.align_corners = align_corners
        self.scale0 = preact_conv(in_channels, branch_channels, 1, norm)
        # Average pools of growing kernel and stride (5/2, 9/4, 17/8), then global pooling.
        pools = [nn.AvgPool2d(2 * s + 1, s, s) for s in (2, 4, 8)] + [nn.AdaptiveAvgPool2d(1)]
        self.scales = nn.ModuleList(nn.Sequential(p, *preact_conv(in_channels, branch_channels, 1, norm)) for p in pools)
        self.compression = preact_conv(5 * branch_channels, out_channels, 1, norm)
        self.shortcut = preact_conv(in_channels, out_channels, 1, norm)

    def pooled(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four pooled branches, upsampled back to the input's size."""
        size = x.shape[-2:]
        return [F.interpolate(s(x), size=size, mode="bilinear", align_corners=self.align_corners) for s in self.scales]


class DAPPM(_PyramidPoolingBase):
    """Deep aggregation pyramid pooling: each pooled branch is added to the previous level and refined by
    a 3x3 unit in turn (hierarchical residual fusion), then all five levels are concatenated and compressed."""

    def __init__(
        self, in_channels: int, branch_channels: int, out_channels: int, norm: str = "BN", align_corners: bool = False
    ) -> None:
        super().__init__(in_channels, branch_channels, out_channels, norm, align_corners)
        self.process = nn.ModuleList(preact_conv(branch_channels, branch_channels, 3, norm) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = [self.scale0(x)]
        for up, process in zip(self.pooled(x), self.process):
            levels.append(process(up + levels[-1]))
        return self.compression(torch.cat(levels, dim=1)) + self.shortcut(x)


class PAPPM(_PyramidPoolingBase):
    """Parallel aggregation pyramid pooling (PIDNet): every pooled branch is added to the unpooled one and all
    four are refined at once by one grouped 3x3 unit (4 groups), so the branches run in parallel."""

    def __init__(
        self, in_channels: int, branch_channels: int, out_channels: int, norm: str = "BN", align_corners: bool = False
    ) -> None:
        super().__init__(in_channels, branch_channels, out_channels, norm, align_corners)
        self.process = preact_conv(4 * branch_channels, 4 * branch_channels, 3, norm, groups=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.scale0(x)
        refined = self.process(torch.cat([up + base for up in self.pooled(x)], dim=1))
        return self.compression(torch.cat([base, refined], dim=1)) + self.shortcut(x)


class DDRHead(nn.Module):
    """Pre-activation segmentation head: norm, ReLU, 3x3 conv to `mid_channels`, norm, ReLU, 1x1 classifier
    (with bias). DDRNet's main and auxiliary heads; PIDNet's heads, its boundary head with one output."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int, norm: str = "BN") -> None:
        super().__init__()
        self.conv = preact_conv(in_channels, mid_channels, 3, norm)
        self.classifier = nn.Sequential(
            get_norm(norm, mid_channels), nn.ReLU(inplace=True), nn.Conv2d(mid_channels, num_classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(x))
