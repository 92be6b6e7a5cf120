"""The heads package: every exported head, its shapes, parameter counts and state_dict names."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segkit.models import heads
from segkit.models.heads import (
    ASPP, AttentionRefinement, Decoder, FCNHead, FeatureFusion, ImagePooling, PSPHead, PyramidPooling, SegHead,
)


def _n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_package_exports_modules_only():
    assert heads.__all__ and all(issubclass(getattr(heads, name), nn.Module) for name in heads.__all__)


def test_seghead_shapes_and_parameters():
    head = SegHead(16, 8, 5)
    assert head(torch.randn(2, 16, 7, 9)).shape == (2, 5, 7, 9)
    # 3x3 conv without bias + BN (2 x 8) + 1x1 classifier with bias.
    assert _n(head) == 16 * 8 * 9 + 2 * 8 + 8 * 5 + 5


def test_seghead_with_up_channels_predicts_on_a_twice_finer_grid():
    head = SegHead(16, 8, 5, up_channels=4, dropout=0.1)
    assert head(torch.randn(2, 16, 7, 9)).shape == (2, 5, 14, 18)
    assert _n(head) == 16 * 8 * 9 + 16 + 8 * 4 * 9 + 8 + 4 * 5 + 5


def test_fcnhead_concat_input_adds_a_fusion_conv():
    plain = FCNHead(12, 8, 3, num_convs=2)
    fused = FCNHead(12, 8, 3, num_convs=2, concat_input=True)
    x = torch.randn(2, 12, 5, 6)
    assert plain(x).shape == fused(x).shape == (2, 3, 5, 6)
    assert _n(fused) - _n(plain) == (12 + 8) * 8 * 9 + 2 * 8


def test_fcnhead_needs_a_conv():
    with pytest.raises(ValueError, match="num_convs"):
        FCNHead(4, 4, 2, num_convs=0)


def test_pyramid_pooling_concatenates_the_input_with_every_level():
    ppm = PyramidPooling(12, 4, bins=(1, 2, 3, 6))
    out = ppm(torch.randn(2, 12, 13, 11))
    assert out.shape == (2, 12 + 4 * 4, 13, 11)
    assert _n(ppm) == 4 * (12 * 4 + 2 * 4)


def test_psphead_shapes_and_state_dict_names():
    head = PSPHead(12, 8, 3, bins=(1, 2))
    assert head(torch.randn(2, 12, 9, 7)).shape == (2, 3, 9, 7)
    assert _n(head) == 2 * (12 * 8 + 16) + (12 + 2 * 8) * 8 * 9 + 16 + 8 * 3 + 3
    assert {"ppm.stages.1.1.conv.weight", "bottleneck.bn.running_var", "classifier.bias"} <= set(head.state_dict())


@pytest.mark.parametrize("align_corners", [False, True])
def test_image_pooling_upsamples_the_pooled_features_bilinearly(align_corners):
    pool = ImagePooling(6, 4, align_corners=align_corners).eval()
    x = torch.randn(1, 6, 5, 7)
    out = pool(x)
    pooled = pool.conv(x.mean((2, 3), keepdim=True))
    # Bit for bit what mmseg computes (its resize of the pooled map), a broadcast up to float rounding.
    assert torch.equal(out, F.interpolate(pooled, size=(5, 7), mode="bilinear", align_corners=align_corners))
    torch.testing.assert_close(out, pooled.expand_as(out))


@pytest.mark.parametrize("separable", [True, False])
def test_aspp_has_a_branch_per_rate_plus_1x1_and_pooling(separable):
    aspp = ASPP(16, 8, rates=(2, 4, 6), separable=separable)
    assert len(aspp.branches) == 5
    assert aspp(torch.randn(2, 16, 9, 11)).shape == (2, 8, 9, 11)
    dilations = [b.depthwise.conv.dilation[0] if separable else b.conv.dilation[0] for b in aspp.branches[1:-1]]
    assert dilations == [2, 4, 6]


def test_decoder_predicts_at_the_low_level_resolution():
    dec = Decoder(low_channels=6, context_channels=8, num_classes=3, low_proj=4, channels=8)
    out = dec(torch.randn(2, 6, 17, 23), torch.randn(2, 8, 5, 6))
    assert out.shape == (2, 3, 17, 23)
    assert {"low_proj.conv.weight", "fuse.0.depthwise.conv.weight", "fuse.1.pointwise.bn.bias"} <= set(dec.state_dict())


def test_bisenet_attention_modules_keep_size_and_reference_names():
    arm = AttentionRefinement(12, 8)
    assert arm(torch.randn(2, 12, 5, 7)).shape == (2, 8, 5, 7)
    ffm = FeatureFusion(16, 8)
    assert ffm(torch.randn(2, 6, 5, 7), torch.randn(2, 10, 5, 7)).shape == (2, 8, 5, 7)
    for m in (arm, ffm):  # conv + norm + the attention's bias-free 1x1 conv and norm
        assert {"conv.conv.weight", "conv.bn.weight", "attention.0.weight", "attention.1.running_mean"} <= set(
            m.state_dict()
        )
        assert "attention.0.bias" not in m.state_dict()
