"""Contract tests over the whole backbone registry (shapes at every output stride, backward, fusion), the
family records it is made of, and building a backbone from the config."""
from __future__ import annotations

import importlib
import re

import pytest
import torch
from torch import nn

from segkit.config import load_cfg
from segkit.models.convert import available_conversions
from segkit.models.backbones import BACKBONES, FAMILIES, backbone_from_cfg, build_backbone, family_of, list_backbones
from segkit.models.fuse import fuse_conv_bn

NAMES = list_backbones()
SIZE = 64  # smallest input whose c5 is still 2x2 at output stride 32
SMALL = 32  # real forward/backward at output stride 8: c5 is 4x4


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Every entry is checked at output stride 32, 16 and 8 on the meta device (the real forward code,
# shapes only, nearly free). Real tensors: light models forward, backward and fusion at OS 8; heavy
# ones, which would dominate the suite on 2 cores, a forward at OS 32 only.
HEAVY_PATTERN = re.compile(r"(resnet|seresnet)(101|152).*|efficientnet_b[67]|xception(65|71)")
HEAVY = [n for n in NAMES if HEAVY_PATTERN.fullmatch(n)]
LIGHT = [n for n in NAMES if n not in HEAVY]
EXPECTED_STRIDES = {32: (4, 8, 16, 32), 16: (4, 8, 16, 16), 8: (4, 8, 8, 8)}


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every norm non-trivial affine parameters and running statistics, so that an error in
    statistics handling (conversion, fusion) shows up in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model


def _check_shapes(backbone: nn.Module, feats: dict, size: int) -> None:
    declared = backbone.output_shape()
    assert list(feats) == list(declared) and list(declared)[:4] == ["c2", "c3", "c4", "c5"]
    for name, spec in declared.items():
        n, c, h, w = feats[name].shape
        assert c == spec.channels, f"{name}: {c} channels, declared {spec.channels}"
        assert (h, w) == (size // spec.stride, size // spec.stride), f"{name}: {h}x{w}, declared stride {spec.stride}"
    assert backbone.num_features == declared["c5"].channels


def _meta_shapes_and_count(name: str, output_stride: int) -> int:
    """Check declared against actual shapes with meta tensors; return the parameter count."""
    with torch.device("meta"):
        backbone = build_backbone(name, output_stride=output_stride).eval()
        feats = backbone(torch.empty(1, 3, SIZE, SIZE))
    _check_shapes(backbone, feats, SIZE)
    pyramid = list(backbone.output_shape().values())[:4]
    assert tuple(s.stride for s in pyramid) == EXPECTED_STRIDES[output_stride]
    return _count(backbone)


def test_registry_split_covers_everything() -> None:
    assert sorted(HEAVY + LIGHT) == NAMES and len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_declared_shapes_and_dilated_params(name: str) -> None:
    # Dilation replaces strides without adding or removing parameters.
    counts = {os_: _meta_shapes_and_count(name, os_) for os_ in family_of(name).output_strides}
    assert len(set(counts.values())) == 1, f"parameter count changes with output stride: {counts}"


@pytest.mark.parametrize("name", LIGHT)
def test_forward_backward_and_fusion(name: str) -> None:
    # One real build at output stride 8 serves both checks, since building dominates the cost here.
    backbone = build_backbone(name, output_stride=min(family_of(name).output_strides)).train()
    x = torch.randn(2, 3, SMALL, SMALL, requires_grad=True)
    feats = backbone(x)
    _check_shapes(backbone, feats, SMALL)
    sum(f.square().mean() for f in feats.values()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    no_grad = [n for n, p in backbone.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the forward: {no_grad[:5]}"

    randomize_norms(backbone).eval()
    fused = fuse_conv_bn(backbone)
    # An IBN's BN half (named "BN") normalises only part of a conv's channels, and BiSeNetV2's context
    # embedding normalises a pooled vector with no conv before it: neither can fold.
    left = [n for n, m in fused.named_modules()
            if isinstance(m, nn.BatchNorm2d) and not n.endswith((".BN", "semantic.ce.norm"))]
    assert not left, f"BatchNorms left unfused: {left[:5]}"
    assert any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules()), "fusion changed the original"
    x = torch.randn(1, 3, SMALL, SMALL)
    with torch.no_grad():
        ref, out = backbone(x), fused(x)
    for k in ref:
        err = (ref[k] - out[k]).abs().max() / ref[k].abs().max().clamp_min(1e-6)
        assert err <= 1e-5, f"{k}: relative error {err:.2e}"


@pytest.mark.parametrize("name", HEAVY)
def test_heavy_forward(name: str) -> None:
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, SIZE, SIZE))
    _check_shapes(backbone, feats, SIZE)
    assert all(torch.isfinite(f).all() for f in feats.values())


def test_unknown_backbone_is_named() -> None:
    with pytest.raises(KeyError, match="no_such_net"):
        build_backbone("no_such_net")


def test_every_backbone_comes_from_exactly_one_family_record() -> None:
    names = [n for family in FAMILIES.values() for n in family.models]
    assert len(names) == len(set(names)), "a model name is registered by two families"
    assert set(names) == set(BACKBONES)
    for family in FAMILIES.values():
        assert set(family.drop_rates) <= set(family.models)


@pytest.mark.parametrize("family", ["resnet", "efficientnet", "xception"])
def test_family_converters_resolve_to_the_family_models(family: str) -> None:
    table = importlib.import_module(f"segkit.models.convert.{family}").CONVERTERS
    assert table and {name for _, name in table} <= set(FAMILIES[family].models)
    assert set(table) <= set(available_conversions())


def test_backbone_from_cfg_applies_stride_norm_and_freezing() -> None:
    cfg = load_cfg(None, ["MODEL.BACKBONE.OUTPUT_STRIDE", "16", "MODEL.BACKBONE.FROZEN_STAGES", "1",
                          "MODEL.NORM", "GN"])
    bb = backbone_from_cfg(cfg)
    assert bb.output_shape()["c5"].stride == 16
    assert isinstance(bb.stages()[1][0].conv1.bn, nn.GroupNorm)
    assert not any(p.requires_grad for s in bb.stages()[:2] for p in s.parameters())
    assert all(p.requires_grad for p in bb.stages()[2].parameters())


def test_backbone_from_cfg_passes_drop_path_rate() -> None:
    cfg = load_cfg(None, ["MODEL.BACKBONE.NAME", "efficientnet_b0", "MODEL.BACKBONE.DROP_PATH_RATE", "0.2"])
    rates = [m.rate for m in backbone_from_cfg(cfg).modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) > 0


@pytest.mark.parametrize("output_stride", [32, 8])
def test_the_tiny_test_backbone_keeps_the_contract(tiny_backbone_name: str, output_stride: int) -> None:
    backbone = build_backbone(tiny_backbone_name, output_stride=output_stride, frozen_stages=0)
    _check_shapes(backbone, backbone(torch.randn(1, 3, SIZE, SIZE)), SIZE)
    assert tuple(s.stride for s in backbone.output_shape().values()) == EXPECTED_STRIDES[output_stride]
    assert not any(p.requires_grad for p in backbone.stem.parameters())


def test_output_stride_a_family_lacks_is_named() -> None:
    with pytest.raises(ValueError, match=r"output_stride 8: backbone 'bisenetv2' supports \[32\]"):
        build_backbone("bisenetv2", output_stride=8)


def test_a_backbone_of_one_segmentor_is_refused_by_others() -> None:
    cfg = load_cfg(None, ["MODEL.NAME", "bisenetv1", "MODEL.BACKBONE.NAME", "bisenetv2"])
    with pytest.raises(ValueError, match="MODEL.BACKBONE.NAME bisenetv2 is part of MODEL.NAME bisenetv2"):
        backbone_from_cfg(cfg)
