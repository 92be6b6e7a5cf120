"""BiSeNetV2's two branches as a zoo backbone (Yu et al., 2021), so that they can be pretrained and exported.

The detail branch (wide, shallow, stride 8) and the semantic branch (narrow, deep: stem, gather-and-expand
stages, context embedding at stride 32) are the layers the segmentor `bisenetv2` builds on; the segmentor's
aggregation layer and heads stay with it. Pretraining needs a classifier in which both branches learn: its
input (`classifier_input`) is the semantic branch's context features plus the detail features averaged down
to the same stride, followed by a 1x1 conv-norm-ReLU to 1024 channels (`build_pre_logits`), pooling and the
fc. Segmentation loads only the two branches, so the head's design never reaches a segmentation model.

Only output stride 32 exists: the segmentor aggregates the branches at strides 8 and 32 by design.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import ConvBNAct, get_norm, init_weights
from .base import Backbone, ShapeSpec


def dw_norm(channels: int, stride: int, norm: str, out_channels: int | None = None) -> list[nn.Module]:
    """3x3 depthwise conv (optionally widening by an integer multiplier) followed by a norm, no activation."""
    out_channels = out_channels or channels
    return [nn.Conv2d(channels, out_channels, 3, stride, 1, groups=channels, bias=False), get_norm(norm, out_channels)]


def pw_norm(in_channels: int, out_channels: int, norm: str) -> list[nn.Module]:
    """1x1 conv followed by a norm, no activation (a linear projection)."""
    return [nn.Conv2d(in_channels, out_channels, 1, bias=False), get_norm(norm, out_channels)]


class DetailBranch(nn.Sequential):
    """Three stages of plain 3x3 convs (64, 64, 128 channels), each starting with stride 2: stride 8 out."""

    def __init__(self, norm: str = "BN") -> None:
        layers = []
        for in_ch, out_ch, n in ((3, 64, 2), (64, 64, 3), (64, 128, 3)):
            layers += [ConvBNAct(in_ch if i == 0 else out_ch, out_ch, 3, stride=2 if i == 0 else 1, norm=norm) for i in range(n)]
        super().__init__(*layers)


class StemBlock(nn.Module):
    """Stride-4 stem: a 3x3 s2 conv, then a conv path and a max-pool path concatenated and fused."""

    def __init__(self, norm: str = "BN") -> None:
        super().__init__()
        self.conv = ConvBNAct(3, 16, 3, stride=2, norm=norm)
        self.left = nn.Sequential(ConvBNAct(16, 8, 1, norm=norm), ConvBNAct(8, 16, 3, stride=2, norm=norm))
        self.right = nn.MaxPool2d(3, 2, 1)
        self.fuse = ConvBNAct(32, 16, 3, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.right(x)], dim=1))


class GatherExpand(nn.Module):
    """Gather-and-expand layer: 3x3 conv, depthwise expansion by 6 (two of them when strided), 1x1 projection.

    The stride-2 form carries a depthwise-separable shortcut; the stride-1 form an identity.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expand: int = 6, norm: str = "BN") -> None:
        super().__init__()
        mid = in_channels * expand
        self.conv1 = ConvBNAct(in_channels, in_channels, 3, norm=norm)
        if stride == 1:
            if in_channels != out_channels:
                raise ValueError("a stride-1 gather-and-expand layer keeps its width")
            self.dwconv = nn.Sequential(*dw_norm(in_channels, 1, norm, mid), nn.ReLU(inplace=True))
            self.shortcut = None
        else:
            self.dwconv = nn.Sequential(
                *dw_norm(in_channels, stride, norm, mid), *dw_norm(mid, 1, norm), nn.ReLU(inplace=True)
            )
            self.shortcut = nn.Sequential(*dw_norm(in_channels, stride, norm), *pw_norm(in_channels, out_channels, norm))
        self.proj = nn.Sequential(*pw_norm(mid, out_channels, norm))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(self.dwconv(self.conv1(x)))
        return self.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ContextEmbedding(nn.Module):
    """Global average pool -> norm -> 1x1 conv, broadcast-added to the input, then a 3x3 conv."""

    def __init__(self, channels: int = 128, norm: str = "BN") -> None:
        super().__init__()
        self.norm = get_norm(norm, channels)
        self.conv_gap = ConvBNAct(channels, channels, 1, norm=norm)
        self.conv_last = ConvBNAct(channels, channels, 3, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.conv_gap(self.norm(x.mean((2, 3), keepdim=True)))
        return self.conv_last(x + g)


class SemanticBranch(nn.Module):
    """Stem (stride 4), gather-and-expand stages to stride 8, 16, 32, context embedding."""

    def __init__(self, norm: str = "BN") -> None:
        super().__init__()
        self.stem = StemBlock(norm)
        self.s3 = nn.Sequential(GatherExpand(16, 32, 2, norm=norm), GatherExpand(32, 32, norm=norm))
        self.s4 = nn.Sequential(GatherExpand(32, 64, 2, norm=norm), GatherExpand(64, 64, norm=norm))
        self.s5 = nn.Sequential(GatherExpand(64, 128, 2, norm=norm), *[GatherExpand(128, 128, norm=norm) for _ in range(3)])
        self.ce = ContextEmbedding(128, norm)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at strides 4, 8, 16, 32 (the booster heads' inputs) and the context-embedded stride-32 one."""
        f4 = self.stem(x)
        f8 = self.s3(f4)
        f16 = self.s4(f8)
        f32 = self.s5(f16)
        return [f4, f8, f16, f32, self.ce(f32)]


class BiSeNetV2Backbone(Backbone):
    """Detail + semantic branch. Outputs c2..c5: the semantic features at strides 4, 8, 16 and the
    context-embedded stride-32 features; "detail": the detail branch (128 channels, stride 8).

    `branches(x)` gives everything the segmentor needs, the pre-context stride-32 features included.
    """

    def __init__(self, output_stride: int = 32, norm: str = "BN") -> None:
        super().__init__()
        if output_stride != 32:
            raise ValueError(f"bisenetv2 has output stride 32 only, got {output_stride}")
        self.detail = DetailBranch(norm)
        self.semantic = SemanticBranch(norm)
        self._norm = norm
        self._out_shapes = OrderedDict([
            ("c2", ShapeSpec(16, 4)), ("c3", ShapeSpec(32, 8)), ("c4", ShapeSpec(64, 16)), ("c5", ShapeSpec(128, 32)),
            ("detail", ShapeSpec(128, 8)),
        ])
        init_weights(self, zero_init_norms=residual_last_norms(self))

    def stages(self) -> list[nn.Module]:
        """Stage 0 holds the semantic stem and the whole detail branch (freezing it fixes every full-detail layer)."""
        s = self.semantic
        return [nn.ModuleList([s.stem, self.detail]), s.s3, s.s4, s.s5, s.ce]

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(detail features, [semantic features at strides 4, 8, 16, 32, context-embedded stride 32])."""
        return self.detail(x), self.semantic(x)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        detail, (f4, f8, f16, _, context) = self.branches(x)
        return OrderedDict([("c2", f4), ("c3", f8), ("c4", f16), ("c5", context), ("detail", detail)])

    def classifier_input(self, feats: "OrderedDict[str, torch.Tensor]") -> torch.Tensor:
        """Context features plus the detail features averaged to their size: both branches get gradients."""
        context = feats["c5"]
        return context + F.adaptive_avg_pool2d(feats["detail"], context.shape[-2:])

    def build_pre_logits(self) -> tuple[nn.Module, int]:
        """1x1 conv-norm-ReLU from 128 to 1024 channels, the classifier's input width."""
        head = ConvBNAct(self.num_features, 1024, 1, norm=self._norm)
        init_weights(head)
        return head, 1024


def residual_last_norms(module: nn.Module) -> list[nn.Module]:
    """The last norm of every gather-and-expand residual branch under `module`, zero-initialised."""
    return [m.proj[-1] for m in module.modules() if isinstance(m, GatherExpand)]


MODELS: dict[str, Callable[..., BiSeNetV2Backbone]] = {"bisenetv2": BiSeNetV2Backbone}
