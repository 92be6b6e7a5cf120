"""EfficientNet B0-B7 / Lite0-4: parameter counts, declared shapes, dilation, drop-connect, Lite layers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.models.backbones import build_backbone
from segkit.models.backbones.efficientnet import MODELS, MBConv
from segkit.models.classifier import create_classifier
from segkit.models.layers import DropPath, SqueezeExcite

from .test_backbones import EXPECTED_STRIDES
from .test_backbones import _check_shapes as check_shapes

# The reference implementations' 1000-class parameter counts (timm == torchvision for B0-B7).
EXACT_COUNTS = {
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "efficientnet_lite0": 4_652_008,
}


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registry_names() -> None:
    assert sorted(MODELS) == sorted([f"efficientnet_b{i}" for i in range(8)] + [f"efficientnet_lite{i}" for i in range(5)])


@pytest.mark.parametrize("name", sorted(EXACT_COUNTS))
def test_classifier_param_count(name: str) -> None:
    with torch.device("meta"):  # shapes only: B7 costs no memory or init time
        assert _count(create_classifier(name)) == EXACT_COUNTS[name]


@pytest.mark.parametrize("name", [f"efficientnet_lite{i}" for i in range(1, 5)])
def test_lite_param_count_matches_timm(name: str) -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        assert _count(create_classifier(name)) == _count(timm.create_model(name))


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b3", "efficientnet_lite2"])
def test_dilation_keeps_params(name: str) -> None:
    with torch.device("meta"):
        counts = {os: _count(build_backbone(name, output_stride=os)) for os in (8, 16, 32)}
    assert counts[8] == counts[16] == counts[32]


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_lite0"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_declared_shapes(name: str, output_stride: int) -> None:
    backbone = build_backbone(name, output_stride=output_stride).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 64))
    check_shapes(backbone, feats, 64)
    assert tuple(s.stride for s in backbone.output_shape().values()) == EXPECTED_STRIDES[output_stride]


def test_b0_channels_and_head() -> None:
    backbone = build_backbone("efficientnet_b0")
    assert [s.channels for s in backbone.output_shape().values()] == [24, 40, 112, 320]
    head, channels = backbone.build_pre_logits()
    assert channels == 1280 and head.conv.in_channels == 320
    # The head conv lives in the classifier, not in the backbone a segmentor uses.
    assert not any("pre_logits" in k or "head" in k for k in backbone.state_dict())
    assert create_classifier("efficientnet_b4").pre_logits.conv.out_channels == 1792


def test_every_backbone_parameter_gets_a_gradient() -> None:
    backbone = build_backbone("efficientnet_b0", output_stride=16)
    sum(f.mean() for f in backbone(torch.randn(2, 3, 64, 64)).values()).backward()
    unused = [n for n, p in backbone.named_parameters() if p.grad is None]
    assert not unused


def test_drop_connect_rises_with_depth() -> None:
    with torch.device("meta"):
        backbone = build_backbone("efficientnet_b0", drop_path_rate=0.2)
    blocks = [m for m in backbone.modules() if isinstance(m, MBConv)]
    rates = [b.drop_path.rate if isinstance(b.drop_path, DropPath) else None for b in blocks]
    with_skip = [r for b, r in zip(blocks, rates) if b.has_skip]
    assert all(r is not None for r in with_skip)
    assert all(r is None for b, r in zip(blocks, rates) if not b.has_skip)
    assert with_skip == sorted(with_skip) and with_skip[0] < with_skip[-1] < 0.2
    # Linear in the block index over all 16 blocks of B0: the last block gets 0.2 * 15 / 16.
    assert rates[-1] is None and blocks[-2].drop_path.rate == pytest.approx(0.2 * 14 / 16)


def test_drop_connect_drops_in_training_only() -> None:
    torch.manual_seed(0)
    backbone = build_backbone("efficientnet_b0", drop_path_rate=0.5)
    plain = build_backbone("efficientnet_b0", drop_path_rate=0.0)
    plain.load_state_dict(backbone.state_dict())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():  # in eval the same weights without drop connect compute the same
        assert torch.equal(backbone.eval()(x)["c5"], plain.eval()(x)["c5"])
        backbone.train()
        assert not torch.equal(backbone(x)["c5"], backbone(x)["c5"])


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite4"])
def test_lite_has_no_se_and_uses_relu6(name: str) -> None:
    with torch.device("meta"):
        model = create_classifier(name)
    kinds = {type(m) for m in model.modules()}
    assert SqueezeExcite not in kinds and nn.SiLU not in kinds and nn.ReLU6 in kinds
    assert model.backbone.stem.conv.conv.out_channels == 32 and model.num_features == 1280


def test_b_models_have_se_and_silu() -> None:
    with torch.device("meta"):
        backbone = build_backbone("efficientnet_b3")
    blocks = [m for m in backbone.modules() if isinstance(m, MBConv)]
    assert all(isinstance(b.se, SqueezeExcite) for b in blocks)
    assert any(isinstance(m, nn.SiLU) for m in backbone.modules())
    assert not any(isinstance(m, nn.ReLU6) for m in backbone.modules())


def test_dilated_depthwise_convs() -> None:
    backbone = build_backbone("efficientnet_b0", output_stride=8)
    dw = [b.dw.conv for b in backbone.layer4]
    assert [c.stride for c in dw] == [(1, 1)] * len(dw)
    # The first block of a dilated group keeps the previous dilation.
    assert dw[0].dilation == (2, 2) and all(c.dilation == (4, 4) for c in dw[1:])


def test_norm_options() -> None:
    backbone = build_backbone("efficientnet_lite0", norm="GN", norm_eps=1e-3)
    assert isinstance(backbone.stem.conv.bn, nn.GroupNorm) and backbone.stem.conv.bn.eps == 1e-3
    frozen = build_backbone("efficientnet_b0", frozen_stages=1)
    assert not any(p.requires_grad for p in frozen.layer1.parameters())
    assert all(p.requires_grad for p in frozen.layer2.parameters())
