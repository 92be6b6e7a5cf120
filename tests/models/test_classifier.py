"""Classifier: head layout, family dropout defaults, channels_last, backbone export."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.models.backbones import build_backbone
from segkit.models.classifier import Classifier, create_classifier, default_drop_rate
from segkit.models.layers import DropPath


def test_forward_and_attributes() -> None:
    model = create_classifier("resnet18", num_classes=10)
    assert isinstance(model, Classifier)
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d) and isinstance(model.pre_logits, nn.Identity)
    assert model.fc.in_features == model.backbone.num_features == 512 and model.fc.out_features == 10
    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert model.fc.weight.grad is not None and model.backbone.stem.conv1.conv.weight.grad is not None


def test_dropout_defaults_and_override() -> None:
    with torch.device("meta"):
        assert isinstance(create_classifier("resnet50").dropout, nn.Identity)
        assert create_classifier("resnet50", drop_rate=0.25).dropout.p == 0.25
        # EfficientNets carry their published rate (B3: 0.3) when none is given.
        assert default_drop_rate("efficientnet_b3") == pytest.approx(0.3)
        assert create_classifier("efficientnet_b3").dropout.p == pytest.approx(0.3)
    assert default_drop_rate("resnet50") == 0.0


def test_drop_path_and_norm_reach_backbone() -> None:
    model = create_classifier("resnet18", drop_path_rate=0.1, norm="GN")
    assert isinstance(model.backbone.layer4[1].drop_path, DropPath)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_channels_last() -> None:
    model = create_classifier("resnet18", num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(ref, out, rtol=1e-4, atol=1e-5)
    model.train()
    model(x.contiguous(memory_format=torch.channels_last)).sum().backward()


def test_backbone_export_loads_into_segmentation_backbone() -> None:
    model = create_classifier("resnet18")
    backbone = build_backbone("resnet18", output_stride=8)
    backbone.load_state_dict(model.backbone.state_dict())  # strict: the same keys at any output stride
    assert torch.equal(backbone.layer4[0].conv2.conv.weight, model.backbone.layer4[0].conv2.conv.weight)


def test_bad_arguments() -> None:
    with pytest.raises(KeyError, match="resnet7"):
        create_classifier("resnet7")
    with pytest.raises(ValueError, match="num_classes"):
        create_classifier("resnet18", num_classes=0)
