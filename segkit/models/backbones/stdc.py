"""STDC networks (Fan et al., CVPR 2021): stages of Short-Term Dense Concatenate modules.

stdc1 (STDCNet813) and stdc2 (STDCNet1446) follow the official code: a stem of two strided 3x3 convs to
stride 4 (c2, 64 channels), then three stages of concatenating modules with 256, 512 and 1024 channels
(c3..c5, strides 8..32). A module's first 1x1 conv gives half its output channels, each following 3x3 conv
half of the previous one's (the last keeps its width), and the concatenation of all of them is the output;
a stage's first module strides through a depthwise 3x3 conv and average-pools its first branch.

Dilated output strides keep a stage's first module, depthwise conv included (so ImageNet weights still
load), at stride 1 and dilate the 3x3 convs after it. The classifier's head (`build_pre_logits`) is a 1x1
conv-norm-ReLU to 1024 channels before pooling; the official classifier adds a squared activation and a hidden
fully connected layer there, which segmentation never loads.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Callable

import torch
from torch import nn

from ..layers import ConvBNAct, init_weights
from .base import FEATURE_NAMES, ShapeSpec, StagedBackbone, dilation_schedule


class STDCModule(nn.Module):
    """Short-term dense concatenate module with `steps` convolutions (concatenating, "cat" in the paper)."""

    def __init__(
        self, in_ch: int, out_ch: int, steps: int = 4, stride: int = 1, dilation: int = 1,
        first_dilation: int = 1, downsample: bool = False, norm: str = "BN",
    ) -> None:
        super().__init__()
        if steps < 2:
            raise ValueError(f"an STDC module needs at least 2 steps, got {steps}")
        self.first = ConvBNAct(in_ch, out_ch // 2, 1, norm=norm)
        # The stage's first module downsamples: a depthwise conv on the path, an average pool on the skip.
        self.avd = (
            ConvBNAct(out_ch // 2, out_ch // 2, 3, stride, first_dilation, groups=out_ch // 2, norm=norm, act=None)
            if downsample else None
        )
        self.skip = nn.AvgPool2d(3, stride, 1) if downsample else None
        widths = [out_ch // 2 ** i for i in range(1, steps)] + [out_ch // 2 ** (steps - 1)]
        self.steps = nn.ModuleList(
            ConvBNAct(widths[i], widths[i + 1], 3, dilation=dilation, norm=norm) for i in range(steps - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.first(x)
        y = first if self.avd is None else self.avd(first)
        outs = [first if self.skip is None else self.skip(first)]
        for step in self.steps:
            y = step(y)
            outs.append(y)
        return torch.cat(outs, dim=1)


class STDCNet(StagedBackbone):
    """STDC body: stem (stride 2) and layer1 (stride 4) are single convs; layer2..4 are module stages."""

    def __init__(
        self, layers: tuple[int, int, int], base: int = 64, steps: int = 4, output_stride: int = 32, norm: str = "BN"
    ) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, base // 2, 3, 2, norm=norm)
        self.layer1 = ConvBNAct(base // 2, base, 3, 2, norm=norm)
        self._out_shapes = OrderedDict([(FEATURE_NAMES[0], ShapeSpec(base, 4))])
        in_ch, dilation, stride_now = base, 1, 4
        for i, (n, (stride, dil)) in enumerate(zip(layers, dilation_schedule(output_stride))):
            out_ch = base * 4 * 2 ** i
            modules = [STDCModule(in_ch, out_ch, steps, stride, dil, dilation, downsample=True, norm=norm)]
            modules += [STDCModule(out_ch, out_ch, steps, 1, dil, dil, norm=norm) for _ in range(n - 1)]
            setattr(self, f"layer{i + 2}", nn.Sequential(*modules))
            in_ch, dilation, stride_now = out_ch, dil, stride_now * stride
            self._out_shapes[FEATURE_NAMES[i + 1]] = ShapeSpec(out_ch, stride_now)
        self._norm = norm
        init_weights(self)

    def build_pre_logits(self) -> tuple[nn.Module, int]:
        """1x1 conv-norm-ReLU from c5 to max(1024, c5) channels, the classifier's input width."""
        width = max(1024, self.num_features)
        head = ConvBNAct(self.num_features, width, 1, norm=self._norm)
        init_weights(head)
        return head, width


def _build(layers: tuple[int, int, int], output_stride: int = 32, norm: str = "BN", **kwargs) -> STDCNet:
    return STDCNet(layers, output_stride=output_stride, norm=norm, **kwargs)


MODELS: dict[str, Callable[..., STDCNet]] = {
    "stdc1": partial(_build, (2, 2, 2)),  # STDCNet813
    "stdc2": partial(_build, (4, 5, 3)),  # STDCNet1446
}
# The official ImageNet recipe's dropout before the classifier.
DROP_RATES: dict[str, float] = {"stdc1": 0.2, "stdc2": 0.2}
