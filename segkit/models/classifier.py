"""ImageNet classifier around a zoo backbone: backbone -> pre-logits -> global average pool -> dropout -> fc."""
from __future__ import annotations

import torch
from torch import nn

from .backbones import BACKBONES, FAMILIES, build_backbone


def default_drop_rate(name: str) -> float:
    """The family default for classifier dropout: `drop_rates[name]` of the family record, else 0."""
    for family in FAMILIES.values():
        if name in family.drop_rates:
            return float(family.drop_rates[name])
    return 0.0


class Classifier(nn.Module):
    """Backbone + classification head; `backbone.state_dict()` is what a segmentation model loads."""

    def __init__(self, backbone: nn.Module, num_classes: int = 1000, drop_rate: float = 0.0) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.backbone = backbone
        self.pre_logits, channels = backbone.build_pre_logits()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features [N, num_features] before dropout and fc."""
        return self.pool(self.pre_logits(self.backbone.classifier_input(self.backbone(x)))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


def create_classifier(
    name: str,
    num_classes: int = 1000,
    drop_rate: float | None = None,
    drop_path_rate: float = 0.0,
    norm: str = "BN",
    **kwargs,
) -> Classifier:
    """A 1000-class (or `num_classes`) classifier named as its backbone (resnet50, efficientnet_b3, ...)."""
    if name not in BACKBONES:
        raise KeyError(f"unknown classifier '{name}'; available: {', '.join(sorted(BACKBONES))}")
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    backbone = build_backbone(name, output_stride=32, norm=norm, **kwargs)
    rate = default_drop_rate(name) if drop_rate is None else drop_rate
    return Classifier(backbone, num_classes, rate)
