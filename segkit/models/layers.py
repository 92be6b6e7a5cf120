"""Building blocks shared by every model family: norm and activation factories, conv-norm-act, SE, weight init."""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm
from torchvision.ops.misc import FrozenBatchNorm2d

NORMS = ("BN", "SyncBN", "GN", "FrozenBN")

# Conv / linear weight initialisations by name (`init_weights(conv_init=...)`).
CONV_INITS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # He normal for ReLU networks, fan-out: the torchvision / timm backbones and the segmentation heads.
    "kaiming_fan_out": lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
    # kaiming_normal_(a=1): fan-in with gain 1, std 1/sqrt(fan_in); BiSeNetV1's reference for its own layers.
    "kaiming_a1": lambda w: nn.init.kaiming_normal_(w, a=1),
}


def init_weights(
    module: nn.Module,
    conv_init: str = "kaiming_fan_out",
    zero_bias: bool = True,
    zero_init_norms: Iterable[nn.Module] = (),
) -> None:
    """Initialise every conv, linear and affine norm layer under `module`, in `module.modules()` order.

    Conv and linear weights follow `conv_init` (a key of CONV_INITS); their biases start at 0 unless
    `zero_bias=False`, which keeps PyTorch's default (the ResNets' SE convs, as in torchvision and timm).
    Affine norm layers start as the identity (weight 1, bias 0), those in `zero_init_norms` with weight 0,
    so that a residual branch ending in one starts as a no-op. Norms without learnable parameters
    (FrozenBN, non-affine InstanceNorm) are left alone.
    """
    if conv_init not in CONV_INITS:
        raise ValueError(f"unknown conv_init '{conv_init}', expected one of {sorted(CONV_INITS)}")
    init_conv = CONV_INITS[conv_init]
    zero = {id(m) for m in zero_init_norms}
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            init_conv(m.weight)
            if zero_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm, _InstanceNorm)) and isinstance(m.weight, nn.Parameter):
            nn.init.constant_(m.weight, 0.0 if id(m) in zero else 1.0)
            nn.init.zeros_(m.bias)


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
