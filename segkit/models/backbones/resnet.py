"""ResNet family: 18/34/50/101/152 with the -C, -D, SE, IBN-a and IBN-b variants.

Architecture facts follow the published papers (He et al. 2016 with the stride on the 3x3 conv,
"v1.5"; Bag of Tricks -C and -D; SENet; IBN-Net) so that torchvision and timm weights convert one to one.
-C (`resnet50c`, timm's name; mmsegmentation's ResNetV1c) is the deep stem alone: three 3x3 convs
32-32-64 in place of the 7x7, with the plain strided 1x1 shortcut; -D adds the average-pooled shortcut.

Dilation (output_stride 8/16): a stage that gives up its stride runs its first block at the
previous stage's dilation and the remaining blocks at the new one, as torchvision's
`replace_stride_with_dilation` does, so the first dilated 3x3 sees the same grid as before.
This is mmsegmentation's `contract_dilation=True` too (a dilated stage's first block at half its
dilation: 1 then 2 in stages 3/4 at output stride 8), so a -C model here computes what mmsegmentation's
ResNetV1c-D8/D16 computes.
In a dilated stage of a -D model the shortcut has no stride to average over, so its pooling is
dropped (a plain 1x1 conv), rather than timm's stride-1 "same" average pool.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Callable

import torch
from torch import nn

from ..layers import ConvBNAct, DropPath, SqueezeExcite, get_norm, init_weights, make_divisible
from .base import FEATURE_NAMES, ShapeSpec, StagedBackbone, dilation_schedule


class IBN(nn.Module):
    """IBN-a norm: instance norm on the first half of the channels, the given norm on the rest."""

    def __init__(self, channels: int, norm: str = "BN", ratio: float = 0.5) -> None:
        super().__init__()
        self.half = int(channels * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = get_norm(norm, channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)


class Downsample(nn.Module):
    """Projection shortcut: 1x1 conv + norm, strided, or (-D) average-pooled first then unstrided."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str, avg_down: bool) -> None:
        super().__init__()
        if avg_down and stride > 1:
            self.pool: nn.Module = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
            stride = 1
        else:
            self.pool = nn.Identity()
        self.conv = ConvBNAct(in_ch, out_ch, 1, stride, norm=norm, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


def _se(channels: int, use_se: bool) -> nn.Module:
    # SE reduction 1/16 rounded to a multiple of 8, as in the SE-ResNets of timm.
    return SqueezeExcite(channels, make_divisible(channels / 16, 8)) if use_se else nn.Identity()


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1, first_dilation: int = 1,
        downsample: nn.Module | None = None, norm: str = "BN", se: bool = False, ibn: str | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_ch, planes, 3, stride, first_dilation, norm=norm)
        if ibn == "a":
            self.conv1.bn = IBN(planes, norm)
        self.conv2 = ConvBNAct(planes, planes, 3, 1, dilation, norm=norm, act=None)
        self.se = _se(planes, se)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.post_norm = nn.InstanceNorm2d(planes, affine=True) if ibn == "b" else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop_path(self.se(self.conv2(self.conv1(x))))
        out += self.downsample(x)  # in place: saves a feature-map allocation per block
        return self.act(self.post_norm(out))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1, first_dilation: int = 1,
        downsample: nn.Module | None = None, norm: str = "BN", se: bool = False, ibn: str | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = ConvBNAct(in_ch, planes, 1, norm=norm)
        if ibn == "a":
            self.conv1.bn = IBN(planes, norm)
        self.conv2 = ConvBNAct(planes, planes, 3, stride, first_dilation, norm=norm)
        self.conv3 = ConvBNAct(planes, out_ch, 1, norm=norm, act=None)
        self.se = _se(out_ch, se)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.post_norm = nn.InstanceNorm2d(out_ch, affine=True) if ibn == "b" else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop_path(self.se(self.conv3(self.conv2(self.conv1(x)))))
        out += self.downsample(x)  # in place: saves a feature-map allocation per block
        return self.act(self.post_norm(out))


class ResNet(StagedBackbone):
    """ResNet body: stem (conv + max-pool, stride 4) and four stages giving c2..c5."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        output_stride: int = 32,
        norm: str = "BN",
        deep_stem: bool = False,
        avg_down: bool = False,
        se: bool = False,
        ibn: str | None = None,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = True,
    ) -> None:
        super().__init__()
        if ibn not in (None, "a", "b"):
            raise ValueError(f"ibn must be None, 'a' or 'b', got {ibn!r}")
        stem: "OrderedDict[str, nn.Module]" = OrderedDict()
        if deep_stem:
            stem["conv1"] = ConvBNAct(3, 32, 3, 2, norm=norm)
            stem["conv2"] = ConvBNAct(32, 32, 3, norm=norm)
            stem["conv3"] = ConvBNAct(32, 64, 3, norm=norm)
        else:
            stem["conv1"] = ConvBNAct(3, 64, 7, 2, norm=norm)
        if ibn == "b":  # IBN-b instance-normalises the stem output.
            next(reversed(stem.values())).bn = nn.InstanceNorm2d(64, affine=True)
        stem["pool"] = nn.MaxPool2d(3, 2, 1)
        self.stem = nn.Sequential(stem)

        # IBN-a: half-IN in blocks of stages 1-3; IBN-b: IN after the addition of the last block in stages 1-2.
        ibn_per_stage = {"a": ("a", "a", "a", None), "b": ("b", "b", None, None)}.get(ibn, (None,) * 4)
        schedule = ((1, 1),) + dilation_schedule(output_stride)
        total, done = sum(layers), 0
        in_ch, dilation, strides = 64, 1, [4]
        self._out_shapes = OrderedDict()
        for i, (n_blocks, (stride, dil)) in enumerate(zip(layers, schedule)):
            planes = 64 * 2**i
            out_ch = planes * block.expansion
            downsample = Downsample(in_ch, out_ch, stride, norm, avg_down) if stride != 1 or in_ch != out_ch else None
            blocks = []
            for j in range(n_blocks):
                # Stochastic depth rises linearly with the block's depth in the network.
                dpr = drop_path_rate * done / max(total - 1, 1)
                stage_ibn = ibn_per_stage[i]
                block_ibn = "b" if stage_ibn == "b" and j == n_blocks - 1 else (stage_ibn if stage_ibn == "a" else None)
                blocks.append(
                    block(
                        in_ch if j == 0 else out_ch, planes, stride if j == 0 else 1, dil,
                        dilation if j == 0 else dil, downsample if j == 0 else None, norm, se, block_ibn, dpr,
                    )
                )
                done += 1
            dilation = dil
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = out_ch
            if i > 0:
                strides.append(strides[-1] * stride)
            self._out_shapes[FEATURE_NAMES[i]] = ShapeSpec(out_ch, strides[-1])
        # Conv biases (the SE convs') keep PyTorch's default, as in torchvision and timm. With
        # zero_init_last, residual branches start as identity, which helps early training (Goyal et al. 2017).
        last_norms = [
            (m.conv3 if isinstance(m, Bottleneck) else m.conv2).bn
            for m in self.modules()
            if zero_init_last and isinstance(m, (BasicBlock, Bottleneck))
        ]
        init_weights(self, zero_bias=False, zero_init_norms=last_norms)


DEPTHS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}

# Variant suffix/prefix -> constructor options.
VARIANTS: dict[str, dict] = {
    "resnet{}": {},
    "resnet{}c": {"deep_stem": True},
    "resnet{}d": {"deep_stem": True, "avg_down": True},
    "seresnet{}": {"se": True},
    "resnet{}_ibn_a": {"ibn": "a"},
    "resnet{}_ibn_b": {"ibn": "b"},
}


def _build(depth: int, options: dict, output_stride: int = 32, norm: str = "BN", **kwargs) -> ResNet:
    block, layers = DEPTHS[depth]
    return ResNet(block, layers, output_stride=output_stride, norm=norm, **{**options, **kwargs})


MODELS: dict[str, Callable[..., ResNet]] = {
    pattern.format(depth): partial(_build, depth, options)
    for pattern, options in VARIANTS.items()
    for depth in DEPTHS
}
