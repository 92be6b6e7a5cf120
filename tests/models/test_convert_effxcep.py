"""timm / torchvision EfficientNet and timm Xception weights -> segkit: exact logits, clear errors."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from segkit.models.backbones import build_backbone
from segkit.models.classifier import create_classifier
from segkit.models.convert import available_conversions, convert_state_dict
from segkit.models.convert.efficientnet import TV_EPS, convert_torchvision, fold_bn_eps

from .test_backbones import randomize_norms

timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")


def _source(library: str, name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    model = timm.create_model(name, **kwargs) if library == "timm" else getattr(torchvision.models, name)(**kwargs)
    return randomize_norms(model).eval()


def _assert_same_logits(library: str, name: str, source: nn.Module, size: int = 64) -> nn.Module:
    converted = convert_state_dict(library, name, source.state_dict())
    model = create_classifier(name)
    model.load_state_dict(converted)
    model.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = source(x), model(x)
    assert expected.abs().max() > 1e-2  # a non-trivial output
    assert (expected - got).abs().max().item() <= 1e-4
    return model


@pytest.mark.parametrize(
    "library,name",
    [
        ("timm", "efficientnet_b0"),
        ("timm", "efficientnet_b2"),
        ("timm", "efficientnet_lite0"),
        ("torchvision", "efficientnet_b0"),
        ("torchvision", "efficientnet_b1"),
        ("timm", "xception41"),
    ],
)
def test_logit_parity(library: str, name: str) -> None:
    _assert_same_logits(library, name, _source(library, name))


def test_xception71_parity_and_dilated_load() -> None:
    model = _assert_same_logits("timm", "xception71", _source("timm", "xception71"), size=32)
    # The converted backbone loads into every dilated variant without missing or extra keys.
    build_backbone("xception71", output_stride=8).load_state_dict(model.backbone.state_dict())


def test_torchvision_tf_style_norm_parity() -> None:
    # torchvision's B5-B7 use BN eps 1e-3; the same fold is checked on a B0 built that way.
    source = _source("torchvision", "efficientnet_b0", norm_layer=partial(nn.BatchNorm2d, eps=1e-3))
    converted = fold_bn_eps(convert_torchvision(source.state_dict(), "efficientnet_b0"), 1e-3, 1e-5)
    model = create_classifier("efficientnet_b0")
    model.load_state_dict(converted)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (source(x) - model.eval()(x)).abs().max().item() <= 1e-4
    with pytest.raises(ValueError, match="larger eps"):
        fold_bn_eps(converted, 1e-5, 1e-3)


@pytest.mark.parametrize("name", [f"efficientnet_b{i}" for i in range(8)])
def test_torchvision_eps_table(name: str) -> None:
    with torch.device("meta"):
        eps = {m.eps for m in getattr(torchvision.models, name)().modules() if isinstance(m, nn.BatchNorm2d)}
    assert eps == {TV_EPS.get(name, 1e-5)}


def test_every_variant_is_convertible() -> None:
    pairs = set(available_conversions())
    for i in range(8):
        assert {("timm", f"efficientnet_b{i}"), ("torchvision", f"efficientnet_b{i}")} <= pairs
    for i in range(5):
        assert ("timm", f"efficientnet_lite{i}") in pairs
    assert {("timm", f"xception{d}") for d in (41, 65, 71)} <= pairs
    assert timm.list_models("efficientnet_lite*") == [f"efficientnet_lite{i}" for i in range(5)]


@pytest.mark.parametrize("library,source,target", [
    ("timm", "efficientnet_b0", "efficientnet_b1"),
    ("torchvision", "efficientnet_b0", "efficientnet_b2"),
    ("timm", "xception41", "xception65"),
])
def test_wrong_model_is_a_clear_error(library: str, source: str, target: str) -> None:
    with torch.device("meta"):
        model = timm.create_model(source) if library == "timm" else getattr(torchvision.models, source)()
    with pytest.raises(ValueError, match=rf"does not fit segkit classifier '{target}'.*(missing|shape)"):
        convert_state_dict(library, target, model.state_dict())
