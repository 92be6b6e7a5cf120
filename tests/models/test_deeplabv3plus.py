"""DeepLabV3+ in its two published styles: mmsegmentation's R50-D8 (exact size, heads, aux) and TF's Xception-65."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from segkit.config import load_cfg
from segkit.models import build_model
from segkit.models.heads import ASPP, FCNHead

from .test_segmentors import ROOT, SIZES, _check_contract, _count

CONFIGS = os.path.join(ROOT, "configs", "cityscapes")

# mmsegmentation's deeplabv3plus_r50-d8 with 19 classes, counted layer by layer (conv weights + BN
# weight/bias; only the two classifiers have a bias):
#   backbone ResNetV1c-50 without fc          23,527,264 (timm resnet50c 25,576,264 - fc 2048*1000+1000)
#   ASPP (in 2048, width 512)                 17,113,088
#     image pooling 1x1 + BN                   1,049,600 (2048*512 + 2*512)
#     1x1 branch + BN                          1,049,600
#     3 separable 3x3 (rates 12, 24, 36)       3,216,384 (3 * (2048*9 + 2*2048 + 2048*512 + 2*512))
#     3x3 bottleneck 5*512 -> 512 + BN        11,797,504 (2560*512*9 + 2*512)
#   decoder                                      584,835
#     c2 projection 256 -> 48 + BN                12,384 (256*48 + 2*48)
#     separable 3x3 560 -> 512                   293,904 (560*9 + 2*560 + 560*512 + 2*512)
#     separable 3x3 512 -> 512                   268,800 (512*9 + 2*512 + 512*512 + 2*512)
#     classifier 512 -> 19                         9,747 (512*19 + 19)
#   aux FCN head on c4 (training only)         2,364,691
#     3x3 1024 -> 256 + BN                     2,359,808 (1024*256*9 + 2*256)
#     classifier 256 -> 19                         4,883 (256*19 + 19)
MMSEG_R50_D8 = {"backbone": 23_527_264, "aspp": 17_113_088, "decoder": 584_835, "aux": 2_364_691}
MMSEG_R50_D8_TOTAL = 43_589_878  # train; 41,225,187 deployed without the aux head


def _children(model: nn.Module) -> dict[str, int]:
    return {name: sum(p.numel() for p in m.parameters()) for name, m in model.named_children()}


def test_mmseg_r50_d8_parameter_count_is_exact():
    cfg = load_cfg(os.path.join(CONFIGS, "deeplabv3plus_r50_d8.yaml"))
    with torch.device("meta"):
        model = build_model(cfg)
    assert _children(model) == MMSEG_R50_D8
    assert sum(MMSEG_R50_D8.values()) == MMSEG_R50_D8_TOTAL
    assert _count(model) == (MMSEG_R50_D8_TOTAL, MMSEG_R50_D8_TOTAL - MMSEG_R50_D8["aux"])


def test_mmseg_r50_d8_heads_follow_the_published_model():
    cfg = load_cfg(os.path.join(CONFIGS, "deeplabv3plus_r50_d8.yaml"))
    with torch.device("meta"):
        model = build_model(cfg)
    assert cfg.MODEL.BACKBONE.NAME == "resnet50c" and model.backbone.output_shape()["c5"].stride == 8
    assert [b.depthwise.conv.dilation[0] for b in model.aspp.branches[1:-1]] == [12, 24, 36]
    assert model.aspp.pool_first and model.aspp.project.conv.kernel_size == (3, 3)
    assert isinstance(model.aspp.dropout, nn.Identity)  # mmseg drops out before the classifier only
    assert isinstance(model.decoder.dropout, nn.Dropout2d) and model.decoder.dropout.p == 0.1
    assert isinstance(model.aux, FCNHead) and model.aux.convs[0].conv.in_channels == 1024
    assert model.aux_names == ("aux",) and model.default_aux_weights == (0.4,)
    assert cfg.LOSS.AUX_WEIGHTS == [0.4] and model.head_names == ("aspp", "decoder", "aux")


def test_mmseg_r50_d8_eval_output_at_odd_sizes():
    cfg = load_cfg(os.path.join(CONFIGS, "deeplabv3plus_r50_d8.yaml"))
    model = build_model(cfg).eval()
    for h, w in SIZES:
        with torch.no_grad():
            assert model(torch.randn(1, 3, h, w)).shape == (1, 19, h, w)


def test_mmseg_style_keeps_the_contract_with_its_aux_head(seg_cfg):
    cfg = seg_cfg("deeplabv3plus", "resnet18c", 8, "MODEL.DEEPLAB_STYLE", "mmseg", "MODEL.AUX_CHANNELS", "32")
    model = build_model(cfg)
    _check_contract(model, cfg)
    # Classifiers start as mmseg's decode heads do, N(0, 0.01) with zero bias; the other convs are He-initialised.
    for head in (model.decoder, model.aux):
        assert head.classifier.weight.std().item() == pytest.approx(0.01, rel=0.3)
        assert torch.all(head.classifier.bias == 0)


def test_tf_style_xception65_is_unchanged():
    cfg = load_cfg(os.path.join(CONFIGS, "deeplabv3plus_xception65.yaml"))
    assert cfg.MODEL.DEEPLAB_STYLE == "tf"
    with torch.device("meta"):
        model = build_model(cfg)
    assert model.aux_names == () and not hasattr(model, "aux")
    assert _count(model) == (41_048_755, 41_048_755)
    assert model.aspp.project.conv.kernel_size == (1, 1) and not model.aspp.pool_first
    assert isinstance(model.aspp.dropout, nn.Dropout2d) and isinstance(model.decoder.dropout, nn.Identity)


def test_pool_first_only_reorders_the_projection_input():
    torch.manual_seed(0)
    tf, mm = ASPP(8, 4, rates=(2, 3), dropout=0.0).eval(), ASPP(8, 4, rates=(2, 3), dropout=0.0, pool_first=True).eval()
    mm.load_state_dict(tf.state_dict())
    w = tf.project.conv.weight.data  # [4, 4 branches * 4, 1, 1]: move the pooling block to the front
    mm.project.conv.weight.data = torch.cat([w[:, -4:], w[:, :-4]], dim=1)
    x = torch.randn(2, 8, 7, 9)
    with torch.no_grad():
        assert torch.allclose(tf(x), mm(x), atol=1e-6)


def test_unknown_style_is_named(seg_cfg):
    with pytest.raises(ValueError, match="DEEPLAB_STYLE"):
        build_model(seg_cfg("deeplabv3plus", "tiny", 32, "MODEL.DEEPLAB_STYLE", "caffe"))
