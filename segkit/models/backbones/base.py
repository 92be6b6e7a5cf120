"""The contract every backbone keeps, so that heads can be built from declared shapes, and the family record."""
from __future__ import annotations

import abc
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

# Output names by pyramid level: c2 has stride 4, c5 stride 32 (less when dilated).
FEATURE_NAMES = ("c2", "c3", "c4", "c5")


@dataclass(frozen=True)
class ShapeSpec:
    channels: int
    stride: int


def dilation_schedule(output_stride: int) -> tuple[tuple[int, int], ...]:
    """(stride, dilation) of the stages producing c3, c4, c5 for an output stride of 8, 16 or 32.

    The stride a stage gives up becomes dilation for it and every later stage, so the
    receptive field is kept while the resolution is.
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    if output_stride == 32:
        return ((2, 1), (2, 1), (2, 1))
    if output_stride == 16:
        return ((2, 1), (2, 1), (1, 2))
    return ((2, 1), (1, 2), (1, 4))


class Backbone(nn.Module, abc.ABC):
    """An image classifier's body that returns a pyramid of feature maps.

    Subclasses set `self._out_shapes` (OrderedDict name -> ShapeSpec: FEATURE_NAMES first, then any
    outputs of the family's own, such as BiSeNetV2's "detail") and implement
    `forward(x) -> OrderedDict[name, Tensor]` with exactly those outputs.
    `stages()` lists the modules frozen by `frozen_stages` (index 0 is the stem).
    """

    _out_shapes: "OrderedDict[str, ShapeSpec]"

    def output_shape(self) -> "OrderedDict[str, ShapeSpec]":
        return OrderedDict(self._out_shapes)

    @property
    def num_features(self) -> int:
        """Channels of the deepest pyramid output, c5."""
        return self._out_shapes[FEATURE_NAMES[-1]].channels

    @abc.abstractmethod
    def stages(self) -> list[nn.Module]:
        """The stem followed by the four stages, in forward order."""

    def classifier_input(self, feats: "OrderedDict[str, torch.Tensor]") -> torch.Tensor:
        """The map a classifier's pre-logits take from `forward`'s outputs: c5 for most families."""
        return feats[FEATURE_NAMES[-1]]

    def build_pre_logits(self) -> tuple[nn.Module, int]:
        """Layers a classifier puts between the deepest feature and pooling, and their channels.

        Identity for most families; EfficientNet's 1x1 head convolution lives here so that a
        segmentation backbone carries no parameter its forward does not use.
        """
        return nn.Identity(), self.num_features

    def freeze_stages(self, frozen_stages: int) -> None:
        """Stop gradients for stages [0..frozen_stages] and keep their norm statistics fixed."""
        for stage in self.stages()[: frozen_stages + 1]:
            stage.eval()
            for p in stage.parameters():
                p.requires_grad_(False)
        self._frozen_stages = frozen_stages

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        frozen = getattr(self, "_frozen_stages", -1)
        if mode and frozen >= 0:
            for stage in self.stages()[: frozen + 1]:
                stage.eval()
        return self

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """The feature maps named in `output_shape()`, in that order."""


class StagedBackbone(Backbone):
    """A backbone built as `stem` then `layer1..layer4`, the layers giving c2..c5 in turn."""

    def stages(self) -> list[nn.Module]:
        return [self.stem, self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.stem(x)
        out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        for name, layer in zip(FEATURE_NAMES, self.stages()[1:]):
            x = layer(x)
            out[name] = x
        return out


@dataclass(frozen=True)
class BackboneFamily:
    """What segkit knows of one backbone family; `backbones.FAMILIES` holds one record per family.

    models: registry name -> constructor(output_stride=32, norm="BN", **kwargs) returning a Backbone.
    drop_rates: the classifier's default dropout by model name, where the family publishes one (else 0).
    output_strides: the output strides the family's constructors accept.
    only_for: the one segmentor (MODEL.NAME) the family is part of, if any; other models refuse it.
    """

    models: Mapping[str, Callable[..., Backbone]]
    drop_rates: Mapping[str, float] = field(default_factory=dict)
    output_strides: tuple[int, ...] = (8, 16, 32)
    only_for: str | None = None
