"""The shared building blocks: norm / activation factories, channel rounding and the one weight initialiser."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from segkit.models.layers import ConvBNAct, DropPath, get_act, get_norm, init_weights, make_divisible


def _filled(*modules: nn.Module) -> nn.Sequential:
    """A Sequential whose every parameter is 0.5, so that each init visibly rewrites what it owns."""
    m = nn.Sequential(*modules)
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(0.5)
    return m


def test_init_weights_default_is_fan_out_he_with_zero_bias_and_identity_norms():
    m = _filled(nn.Conv2d(16, 64, 3, bias=True), nn.BatchNorm2d(64), nn.GroupNorm(4, 64), nn.Linear(64, 32))
    init_weights(m)
    conv, bn, gn, fc = m
    # He normal, fan-out: std sqrt(2 / (out_channels * k * k)).
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.1)
    assert torch.all(conv.bias == 0) and torch.all(fc.bias == 0)
    for norm in (bn, gn):
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)


def test_init_weights_kaiming_a1_is_unit_gain_fan_in():
    conv = _filled(nn.Conv2d(64, 16, 3))[0]
    init_weights(conv, conv_init="kaiming_a1")
    assert conv.weight.std().item() == pytest.approx(1 / math.sqrt(64 * 9), rel=0.1)


def test_init_weights_zero_init_norms_and_kept_biases():
    m = _filled(nn.Conv2d(3, 8, 1, bias=True), nn.BatchNorm2d(8), nn.BatchNorm2d(8), nn.InstanceNorm2d(8, affine=True))
    init_weights(m, zero_bias=False, zero_init_norms=[m[2]])
    assert torch.all(m[0].bias == 0.5)  # PyTorch's default stands
    assert torch.all(m[1].weight == 1) and torch.all(m[2].weight == 0) and torch.all(m[2].bias == 0)
    assert torch.all(m[3].weight == 1)


def test_init_weights_leaves_frozen_norms_and_rejects_unknown_inits():
    frozen = FrozenBatchNorm2d(4)
    frozen.weight.fill_(0.5)
    init_weights(nn.Sequential(nn.Conv2d(3, 4, 1), frozen), zero_init_norms=[frozen])
    assert torch.all(frozen.weight == 0.5)
    with pytest.raises(ValueError, match="conv_init"):
        init_weights(nn.Conv2d(3, 4, 1), conv_init="xavier")


@pytest.mark.parametrize("norm,cls", [("BN", nn.BatchNorm2d), ("SyncBN", nn.SyncBatchNorm), ("GN", nn.GroupNorm),
                                      ("FrozenBN", FrozenBatchNorm2d)])
def test_get_norm_by_name(norm, cls):
    assert isinstance(get_norm(norm, 48), cls)


def test_factories_reject_unknown_names_and_round_channels():
    with pytest.raises(ValueError, match="norm"):
        get_norm("LN", 8)
    with pytest.raises(ValueError, match="activation"):
        get_act("mish")
    assert isinstance(get_act(None), nn.Identity)
    assert make_divisible(32 * 1.1) == 32 and make_divisible(37.5) == 40 and make_divisible(3) == 8


def test_convbnact_keeps_size_at_any_dilation():
    m = ConvBNAct(3, 8, 3, dilation=4)
    assert m(torch.randn(1, 3, 11, 13)).shape == (1, 8, 11, 13)
    assert m.conv.bias is None and isinstance(ConvBNAct(3, 8, norm=None).conv.bias, nn.Parameter)


def test_drop_path_is_identity_in_eval_and_drops_whole_samples_in_training() -> None:
    x = torch.randn(64, 3, 4, 4)
    layer = DropPath(0.25)
    assert torch.equal(layer.eval()(x), x)
    torch.manual_seed(0)
    out = layer.train()(x)
    dropped = (out == 0).flatten(1).all(1)
    kept = ~dropped
    assert 0 < int(dropped.sum()) < 64  # some samples dropped whole, the others kept
    assert torch.allclose(out[kept], x[kept] / 0.75)  # survivors rescaled by 1 / (1 - rate)
    with pytest.raises(ValueError, match="drop path rate"):
        DropPath(1.0)
