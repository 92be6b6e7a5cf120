"""Every segmentor on a few zoo backbones: output sizes, auxiliary outputs, gradients, head marking, sizes."""
from __future__ import annotations

import glob
import os

import pytest
import torch

from segkit.config import load_cfg
from segkit.models import build_model
from segkit.solver import build_optimizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Heights and widths that are no multiple of 32, so every resize path is exercised.
H, W = 67, 93
# Narrow heads keep the dilated models cheap; the architecture is the same at any width.
NARROW = ["MODEL.HEAD_CHANNELS", "64", "MODEL.AUX_CHANNELS", "32", "MODEL.ASPP_CHANNELS", "32"]
OUTPUT_STRIDE = {"bisenetv1": 32, "fcn": 8, "pspnet": 8, "deeplabv3plus": 16}
# Each model on two or three backbone families (Xception is the slowest to build, so it appears twice).
CASES = [
    ("bisenetv1", "resnet18"), ("bisenetv1", "efficientnet_b0"), ("bisenetv1", "xception41"),
    ("bisenetv2", None),
    ("fcn", "resnet18"), ("fcn", "efficientnet_b0"),
    ("pspnet", "resnet18"), ("pspnet", "efficientnet_b0"),
    ("deeplabv3plus", "resnet18"), ("deeplabv3plus", "xception41"),
]


def _cfg(model: str, backbone: str | None, extra: list[str] = ()):
    opts = ["MODEL.NAME", model, *NARROW]
    if backbone:
        opts += ["MODEL.BACKBONE.NAME", backbone, "MODEL.BACKBONE.OUTPUT_STRIDE", str(OUTPUT_STRIDE[model])]
    return load_cfg(None, opts + list(extra))


def _params(modules) -> set[int]:
    return {id(p) for m in modules for p in m.parameters()}


@pytest.mark.parametrize("model_name,backbone", CASES, ids=[f"{m}-{b}" for m, b in CASES])
def test_train_eval_forward_backward_and_heads(model_name, backbone):
    cfg = _cfg(model_name, backbone)
    model = build_model(cfg).train()
    x = torch.randn(2, 3, H, W)

    logits, aux = model(x)
    assert logits.shape == (2, cfg.MODEL.NUM_CLASSES, H, W)
    assert tuple(aux) == model.aux_names
    assert len(model.default_aux_weights) == len(model.aux_names)
    for name, a in aux.items():
        assert a.shape == logits.shape, name
    (logits.mean() + sum(a.mean() for a in aux.values())).backward()
    for name in model.aux_names:
        assert all(p.grad is not None for p in getattr(model, name).parameters()), f"{name} got no gradient"

    heads = model.head_modules()
    assert heads, "no module marked as head"
    head_ids = _params(heads)
    if backbone:
        assert hasattr(model, "backbone")
        backbone_ids = _params([model.backbone])
        assert head_ids.isdisjoint(backbone_ids)
        assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    else:
        assert not hasattr(model, "backbone")
    # The optimizer must see the marking: every head parameter in a group with the head multiplier.
    opt = build_optimizer(cfg, model)
    mult = {id(p): g["lr_mult"] for g in opt.param_groups for p in g["params"]}
    assert {mult[i] for i in head_ids} == {cfg.SOLVER.HEAD_LR_MULT}
    assert {m for i, m in mult.items() if i not in head_ids} == {1.0}

    model.eval()
    with torch.no_grad():
        out = model(x[:1])
    assert isinstance(out, torch.Tensor) and out.shape == (1, cfg.MODEL.NUM_CLASSES, H, W)


def _count(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    aux = sum(p.numel() for n in model.aux_names for p in getattr(model, n).parameters())
    return total, total - aux


def test_bisenetv1_resnet18_parameter_count_matches_public_model():
    assert _count(build_model(_cfg("bisenetv1", "resnet18"))) == (13_425_721, 13_275_539)


def test_bisenetv2_parameter_count_matches_public_model():
    assert _count(build_model(_cfg("bisenetv2", None))) == (5_231_487, 3_358_627)


def test_bisenetv1_context_path_follows_backbone_channels():
    model = build_model(_cfg("bisenetv1", "efficientnet_b0"))
    shapes = model.backbone.output_shape()
    assert model.context.arm16.conv.conv.in_channels == shapes["c4"].channels
    assert model.context.arm32.conv.conv.in_channels == shapes["c5"].channels


def test_deeplab_rates_follow_output_stride():
    from segkit.models.segmentors.deeplabv3plus import aspp_rates

    assert aspp_rates([6, 12, 18], 16) == [6, 12, 18]
    assert aspp_rates([6, 12, 18], 8) == [12, 24, 36]
    with pytest.raises(ValueError, match="OUTPUT_STRIDE"):
        aspp_rates([6, 12, 18], 4)
    model = build_model(_cfg("deeplabv3plus", "resnet18", ["MODEL.BACKBONE.OUTPUT_STRIDE", "8"]))
    dilations = [b.depthwise.conv.dilation[0] for b in model.aspp.branches[1:-1]]
    assert dilations == [12, 24, 36]


def test_pspnet_rejects_bad_bins():
    with pytest.raises(ValueError, match="PPM_BINS"):
        build_model(_cfg("pspnet", "resnet18", ["MODEL.PPM_BINS", "[]"]))


CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "cityscapes", "*.yaml")))


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_every_cityscapes_config_loads_and_builds(path):
    cfg = load_cfg(path)
    # On the meta device: the full-size model is built and traced without allocating or computing.
    with torch.device("meta"):
        model = build_model(cfg)
        out = model.eval()(torch.empty(1, 3, 64, 128))
    assert out.shape == (1, cfg.MODEL.NUM_CLASSES, 64, 128)
    assert model.head_modules()
    assert not cfg.LOSS.AUX_WEIGHTS or len(cfg.LOSS.AUX_WEIGHTS) == len(model.aux_names)


def test_configs_exist_for_the_published_models():
    names = {os.path.basename(p)[:-5] for p in CONFIGS}
    assert {"bisenetv1_r18", "bisenetv1_r50", "bisenetv2", "fcn_r50_d8", "fcn_r101_d8", "pspnet_r50_d8",
            "pspnet_r101_d8", "deeplabv3plus_xception65"} <= names
