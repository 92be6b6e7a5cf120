"""Building blocks shared by every model family: norm and activation factories, conv-norm-act, SE."""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

NORMS = ("BN", "SyncBN", "GN", "FrozenBN")


def get_norm(norm: str, channels: int, eps: float = 1e-5, momentum: float = 0.1) -> nn.Module:
    """A 2-D norm layer by name: BN, SyncBN, GN (32 groups, fewer where channels demand) or FrozenBN."""
    if norm == "BN":
        return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
    if norm == "SyncBN":
        return nn.SyncBatchNorm(channels, eps=eps, momentum=momentum)
    if norm == "GN":
        return nn.GroupNorm(math.gcd(32, channels), channels, eps=eps)
    if norm == "FrozenBN":
        return FrozenBatchNorm2d(channels, eps=eps)
    raise ValueError(f"unknown norm '{norm}', expected one of {NORMS}")


ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
    "gelu": nn.GELU,
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    "none": nn.Identity,
}


def get_act(act: str | None) -> nn.Module:
    """An activation module by name (None or 'none' gives Identity)."""
    key = "none" if act is None else act.lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{act}', expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping below 90% of `value`."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ConvBNAct(nn.Module):
    """Conv2d (no bias) -> norm -> activation, with 'same' padding for odd kernels and dilation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        norm: str | None = "BN",
        act: str | None = "relu",
        bias: bool = False,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias or norm is None
        )
        self.bn = get_norm(norm, out_channels, norm_eps, norm_momentum) if norm else nn.Identity()
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> reduce -> act -> expand -> gate, multiplied onto the input."""

    def __init__(self, channels: int, reduced: int, act: str = "relu", gate: str = "sigmoid") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = get_act(act)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = get_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class DropPath(nn.Module):
    """Stochastic depth: drops a residual branch per sample in training, rescaling the survivors."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class SeparableConv2d(nn.Module):
    """Depthwise kxk conv -> norm -> act, then pointwise 1x1 conv -> norm -> act.

    `act=None` leaves both convolutions without activation (Xception's pre-activated units);
    DeepLabV3+'s ASPP/decoder use act="relu". Padding keeps the size at any dilation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        norm: str | None = "BN",
        act: str | None = "relu",
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        bn = dict(norm=norm, act=act, norm_eps=norm_eps, norm_momentum=norm_momentum)
        self.depthwise = ConvBNAct(in_channels, in_channels, kernel_size, stride, dilation, in_channels, **bn)
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))
