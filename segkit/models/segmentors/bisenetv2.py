"""BiSeNetV2 (Yu et al., 2021): a wide shallow detail branch and a narrow deep semantic branch.

The architecture follows the best public reproduction (19 classes: 3,358,627 parameters for
inference, 5,231,487 with the four training-only booster heads). It stands on no zoo backbone:
both branches are trained from scratch.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ..heads import SegHead
from ..layers import ConvBNAct, get_norm, init_weights
from .base import Segmentor, resize_logits


def _dw_norm(channels: int, stride: int, norm: str, out_channels: int | None = None) -> list[nn.Module]:
    """3x3 depthwise conv (optionally widening by an integer multiplier) followed by a norm, no activation."""
    out_channels = out_channels or channels
    return [nn.Conv2d(channels, out_channels, 3, stride, 1, groups=channels, bias=False), get_norm(norm, out_channels)]


def _pw_norm(in_channels: int, out_channels: int, norm: str) -> list[nn.Module]:
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
            self.dwconv = nn.Sequential(*_dw_norm(in_channels, 1, norm, mid), nn.ReLU(inplace=True))
            self.shortcut = None
        else:
            self.dwconv = nn.Sequential(
                *_dw_norm(in_channels, stride, norm, mid), *_dw_norm(mid, 1, norm), nn.ReLU(inplace=True)
            )
            self.shortcut = nn.Sequential(*_dw_norm(in_channels, stride, norm), *_pw_norm(in_channels, out_channels, norm))
        self.proj = nn.Sequential(*_pw_norm(mid, out_channels, norm))
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


class BilateralGuidedAggregation(nn.Module):
    """Each branch gates the other: detail features by upsampled semantic attention at stride 8, and
    semantic features by downsampled detail attention at stride 32; the sum goes through a 3x3 conv."""

    def __init__(self, channels: int = 128, norm: str = "BN") -> None:
        super().__init__()
        c = channels
        self.detail_keep = nn.Sequential(*_dw_norm(c, 1, norm), nn.Conv2d(c, c, 1, bias=False))
        self.detail_down = nn.Sequential(
            nn.Conv2d(c, c, 3, 2, 1, bias=False), get_norm(norm, c), nn.AvgPool2d(3, 2, 1)
        )
        self.semantic_up = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), get_norm(norm, c))
        self.semantic_keep = nn.Sequential(*_dw_norm(c, 1, norm), nn.Conv2d(c, c, 1, bias=False))
        self.conv = ConvBNAct(c, c, 3, norm=norm)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        size = detail.shape[-2:]
        gate_up = F.interpolate(self.semantic_up(semantic), size=size, mode="nearest")
        low = self.detail_keep(detail) * torch.sigmoid(gate_up)
        high = self.detail_down(detail) * torch.sigmoid(self.semantic_keep(semantic))
        return self.conv(low + F.interpolate(high, size=size, mode="nearest"))


class BiSeNetV2(Segmentor):
    """Detail branch + semantic branch -> aggregation -> head; four booster heads in training."""

    aux_names = ("aux4", "aux8", "aux16", "aux32")
    default_aux_weights = (1.0, 1.0, 1.0, 1.0)
    # The public recipe gives the main head and the booster heads the 10x learning rate; the
    # branches and the aggregation layer train at the base rate.
    head_names = ("head", "aux4", "aux8", "aux16", "aux32")

    def __init__(self, num_classes: int, norm: str = "BN", align_corners: bool = False, dropout: float = 0.1) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.detail = DetailBranch(norm)
        self.semantic = SemanticBranch(norm)
        self.bga = BilateralGuidedAggregation(128, norm)
        self.head = SegHead(128, 1024, num_classes, norm, dropout)
        # Booster heads: 128 mid channels; the extra conv after the 2x upsampling has
        # (stride / 2)^2 * 4 = stride^2 channels, as in the public implementation.
        for name, in_ch, stride in zip(self.aux_names, (16, 32, 64, 128), (4, 8, 16, 32)):
            setattr(self, name, SegHead(in_ch, 128, num_classes, norm, dropout, up_channels=stride * stride))
        # Zero-initialised last norm of every gather-and-expand residual branch.
        init_weights(self, zero_init_norms=[m.proj[-1] for m in self.modules() if isinstance(m, GatherExpand)])

    def forward(self, x: torch.Tensor):
        size = x.shape[-2:]
        detail = self.detail(x)
        feats = self.semantic(x)
        logits = resize_logits(self.head(self.bga(detail, feats[-1])), size, self.align_corners)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training:
            for name, f in zip(self.aux_names, feats[:4]):
                aux[name] = resize_logits(getattr(self, name)(f), size, self.align_corners)
        return self.outputs(logits, aux)


def build_bisenetv2(cfg: CfgNode) -> BiSeNetV2:
    return BiSeNetV2(
        cfg.MODEL.NUM_CLASSES, norm=cfg.MODEL.NORM, align_corners=cfg.MODEL.ALIGN_CORNERS, dropout=cfg.MODEL.DROPOUT
    )
