"""Shared segmentation heads and the config-to-backbone helper."""
from __future__ import annotations

import torch
from torch import nn

from segkit.config import load_cfg
from segkit.models.heads import FCNHead, SegHead, backbone_from_cfg, init_head_weights


def _n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


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
    try:
        FCNHead(4, 4, 2, num_convs=0)
    except ValueError as e:
        assert "num_convs" in str(e)
    else:
        raise AssertionError("num_convs=0 accepted")


def test_init_head_weights_zeroes_named_norms_and_biases():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
    for p in m.parameters():
        nn.init.constant_(p, 0.5)
    init_head_weights(m, zero_init_names=("3",))
    assert torch.all(m[0].bias == 0) and torch.all(m[1].weight == 1) and torch.all(m[3].weight == 0)
    assert m[0].weight.std() > 0


def test_backbone_from_cfg_applies_stride_norm_and_freezing():
    cfg = load_cfg(None, ["MODEL.BACKBONE.OUTPUT_STRIDE", "16", "MODEL.BACKBONE.FROZEN_STAGES", "1",
                          "MODEL.NORM", "GN"])
    bb = backbone_from_cfg(cfg)
    assert bb.output_shape()["c5"].stride == 16
    assert isinstance(bb.stages()[1][0].conv1.bn, nn.GroupNorm)
    assert not any(p.requires_grad for s in bb.stages()[:2] for p in s.parameters())
    assert all(p.requires_grad for p in bb.stages()[2].parameters())
    assert backbone_from_cfg(cfg, output_stride=8).output_shape()["c5"].stride == 8


def test_backbone_from_cfg_passes_drop_path_rate():
    cfg = load_cfg(None, ["MODEL.BACKBONE.NAME", "efficientnet_b0", "MODEL.BACKBONE.DROP_PATH_RATE", "0.2"])
    bb = backbone_from_cfg(cfg)
    rates = [m.rate for m in bb.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) > 0
