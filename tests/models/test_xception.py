"""Aligned Xception 41/65/71: parameter counts, declared shapes, dilation, DeepLab unit structure."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.models.backbones import build_backbone
from segkit.models.backbones.xception import ARCHS, MODELS, XceptionUnit, unit_stages
from segkit.models.classifier import create_classifier

from .test_backbones import EXPECTED_STRIDES
from .test_backbones import _check_shapes as check_shapes

# timm's xception41/65/71 (xception_aligned), 1000 classes.
EXACT_COUNTS = {"xception41": 26_969_560, "xception65": 39_916_312, "xception71": 42_338_736}


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registry_names() -> None:
    assert sorted(MODELS) == ["xception41", "xception65", "xception71"]


@pytest.mark.parametrize("name", sorted(EXACT_COUNTS))
def test_classifier_param_count(name: str) -> None:
    with torch.device("meta"):
        model = create_classifier(name)
        assert _count(model) == EXACT_COUNTS[name]
        # Dilation changes no parameter.
        assert _count(build_backbone(name, output_stride=8)) == _count(model.backbone)


def test_middle_flow_lengths() -> None:
    middle = {name: sum(1 for i, o, s in units if i == 728 and o == (728,) * 3 and s == 1) for name, units in ARCHS.items()}
    assert middle == {"xception41": 8, "xception65": 16, "xception71": 16}


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_declared_shapes(output_stride: int) -> None:
    backbone = build_backbone("xception41", output_stride=output_stride).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 64))
    check_shapes(backbone, feats, 64)
    assert tuple(s.stride for s in backbone.output_shape().values()) == EXPECTED_STRIDES[output_stride]


def test_stage_channels() -> None:
    with torch.device("meta"):
        shapes = {n: [s.channels for s in build_backbone(n).output_shape().values()] for n in MODELS}
    assert shapes == {
        "xception41": [128, 256, 728, 2048],
        "xception65": [128, 256, 728, 2048],
        "xception71": [256, 728, 728, 2048],
    }
    assert unit_stages(ARCHS["xception71"])[:5] == [0, 0, 1, 1, 2]


def test_unit_structure() -> None:
    with torch.device("meta"):
        backbone = build_backbone("xception65", output_stride=16)
    units = [m for m in backbone.modules() if isinstance(m, XceptionUnit)]
    assert len(units) == 21
    # No max-pool anywhere: every downsampling is the third separable conv of a unit.
    assert not any(isinstance(m, nn.MaxPool2d) for m in backbone.modules())
    strided = [u for u in units if u.sep3.depthwise.conv.stride == (2, 2)]
    assert len(strided) == 3 and all(u.sep1.depthwise.conv.stride == (1, 1) for u in units)
    for unit in units:
        for sep in (unit.sep1, unit.sep2, unit.sep3):
            assert isinstance(sep.depthwise.bn, nn.BatchNorm2d) and sep.depthwise.bn.eps == 1e-3
            # Residual units are pre-activated; the last exit unit activates inside its separable convs.
            assert isinstance(sep.depthwise.act, nn.Identity if unit.residual else nn.ReLU)
    assert [u.residual for u in units].count(False) == 1 and not units[-1].residual
    # Output stride 16: the exit flow's first unit keeps dilation 1, the last one runs at 2.
    assert units[-2].sep3.depthwise.conv.stride == (1, 1) and units[-2].sep3.depthwise.conv.dilation == (1, 1)
    assert units[-1].sep1.depthwise.conv.dilation == (2, 2)


def test_backward_reaches_every_parameter() -> None:
    backbone = build_backbone("xception41", output_stride=16, drop_path_rate=0.1)
    sum(f.mean() for f in backbone(torch.randn(2, 3, 32, 32)).values()).backward()
    assert not [n for n, p in backbone.named_parameters() if p.grad is None]
    rates = [u.drop_path.rate for u in backbone.modules() if isinstance(u, XceptionUnit) and hasattr(u.drop_path, "rate")]
    assert rates == sorted(rates) and rates[0] < rates[-1] <= 0.1


def test_pre_logits_is_identity() -> None:
    with torch.device("meta"):
        model = create_classifier("xception41")
    assert isinstance(model.pre_logits, nn.Identity) and model.num_features == 2048
