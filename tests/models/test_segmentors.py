"""Every registered segmentor keeps the contract; each backbone family carries them; published sizes."""
from __future__ import annotations

import glob
import os

import pytest
import torch

from segkit.config import load_cfg
from segkit.losses import build_criterion
from segkit.models import build_model
from segkit.models.backbones import FAMILIES, Backbone
from segkit.models.segmentors import SEGMENTORS
from segkit.solver import build_optimizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Heights and widths that are odd and no multiple of 32, so every resize and rounding path is exercised.
SIZES = ((67, 93), (45, 71))


def _params(modules) -> set[int]:
    return {id(p) for m in modules for p in m.parameters()}


def _check_contract(model, cfg) -> None:
    """Train mode: logits and aux outputs at the input size, in `aux_names` order, gradients everywhere, heads
    marked for the optimizer; eval mode: logits only, at each of SIZES."""
    h, w = SIZES[0]
    x = torch.randn(2, 3, h, w)
    logits, aux = model.train()(x)
    assert logits.shape == (2, cfg.MODEL.NUM_CLASSES, h, w)
    assert tuple(aux) == model.aux_names
    assert len(model.default_aux_weights) == len(model.aux_names)
    for name, a in aux.items():
        # Class-logit heads have C channels, binary heads (PIDNet's boundary, STDC's detail) one.
        assert a.shape[0] == 2 and a.shape[1] in (1, cfg.MODEL.NUM_CLASSES) and a.shape[2:] == (h, w), name
    (logits.mean() + sum(a.mean() for a in aux.values())).backward()
    for name in model.aux_names:
        assert all(p.grad is not None for p in getattr(model, name).parameters()), f"{name} got no gradient"

    heads = model.head_modules()
    assert heads, "no module marked as head"
    submodules = {id(m) for m in model.modules()}
    assert all(isinstance(m, torch.nn.Module) and id(m) in submodules for m in heads)
    head_ids = _params(heads)
    if hasattr(model, "backbone"):
        assert isinstance(model.backbone, Backbone)
        assert head_ids.isdisjoint(_params([model.backbone]))
        assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    # The optimizer must see the marking: every head parameter in a group with the head multiplier.
    opt = build_optimizer(cfg, model)
    mult = {id(p): g["lr_mult"] for g in opt.param_groups for p in g["params"]}
    assert {mult[i] for i in head_ids} == {cfg.SOLVER.HEAD_LR_MULT}
    assert {m for i, m in mult.items() if i not in head_ids} == {1.0}

    model.eval()
    for h, w in SIZES:
        with torch.no_grad():
            out = model(torch.randn(1, 3, h, w))
        assert isinstance(out, torch.Tensor) and out.shape == (1, cfg.MODEL.NUM_CLASSES, h, w)


@pytest.mark.parametrize("name", sorted(SEGMENTORS))
def test_every_registered_segmentor_keeps_the_contract(name, seg_cfg):
    cfg = seg_cfg(name)  # on the tiny zoo backbone where the model stands on one
    _check_contract(build_model(cfg), cfg)


# Every backbone family under the two ways a segmentor uses it: BiSeNetV1's context path at output
# stride 32 (its odd-size rounding must meet the spatial path's) and FCN on the dilated stride-8 form.
# Families that belong to one segmentor (BiSeNetV2's branches) are covered by that segmentor's own tests.
FAMILY_CASES = [(f, m, s) for f in sorted(FAMILIES) if FAMILIES[f].only_for is None
                for m, s in (("bisenetv1", 32), ("fcn", 8))]


@pytest.mark.parametrize("family,model_name,output_stride", FAMILY_CASES, ids=[f"{f}-{m}" for f, m, _ in FAMILY_CASES])
def test_segmentors_on_each_backbone_family(family, model_name, output_stride, seg_cfg):
    backbone = next(iter(FAMILIES[family].models))  # the family's first (smallest) model
    cfg = seg_cfg(model_name, backbone, output_stride)
    _check_contract(build_model(cfg), cfg)


def _count(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    aux = sum(p.numel() for n in model.aux_names for p in getattr(model, n).parameters())
    return total, total - aux


def test_bisenetv1_resnet18_parameter_count_matches_public_model(seg_cfg):
    assert _count(build_model(seg_cfg("bisenetv1", "resnet18"))) == (13_425_721, 13_275_539)


def test_bisenetv2_parameter_count_matches_public_model(seg_cfg):
    assert _count(build_model(seg_cfg("bisenetv2"))) == (5_231_487, 3_358_627)


def test_bisenetv1_context_path_follows_backbone_channels(seg_cfg):
    model = build_model(seg_cfg("bisenetv1", "efficientnet_b0"))
    shapes = model.backbone.output_shape()
    assert model.context.arm16.conv.conv.in_channels == shapes["c4"].channels
    assert model.context.arm32.conv.conv.in_channels == shapes["c5"].channels


def test_deeplab_rates_follow_output_stride(seg_cfg):
    from segkit.models.segmentors.deeplabv3plus import aspp_rates

    assert aspp_rates([6, 12, 18], 16) == [6, 12, 18]
    assert aspp_rates([6, 12, 18], 8) == [12, 24, 36]
    with pytest.raises(ValueError, match="OUTPUT_STRIDE"):
        aspp_rates([6, 12, 18], 4)
    model = build_model(seg_cfg("deeplabv3plus", "resnet18", 8))
    dilations = [b.depthwise.conv.dilation[0] for b in model.aspp.branches[1:-1]]
    assert dilations == [12, 24, 36]


def test_pspnet_rejects_bad_bins(seg_cfg):
    with pytest.raises(ValueError, match="PPM_BINS"):
        build_model(seg_cfg("pspnet", "resnet18", 8, "MODEL.PPM_BINS", "[]"))


CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "cityscapes", "*.yaml")))
CAMVID_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "camvid", "*.yaml")))


@pytest.mark.parametrize(
    "path", CONFIGS + CAMVID_CONFIGS, ids=[os.path.relpath(p, os.path.join(ROOT, "configs")) for p in CONFIGS + CAMVID_CONFIGS]
)
def test_every_cityscapes_and_camvid_config_loads_and_builds(path):
    cfg = load_cfg(path)
    # On the meta device: the full-size model is built and traced without allocating or computing.
    with torch.device("meta"):
        model = build_model(cfg)
        out = model.eval()(torch.empty(1, 3, 64, 128))
    assert out.shape == (1, cfg.MODEL.NUM_CLASSES, 64, 128)
    assert model.head_modules()
    assert not cfg.LOSS.AUX_WEIGHTS or len(cfg.LOSS.AUX_WEIGHTS) == len(model.aux_names)
    build_criterion(cfg, model)  # every head's loss, as the config and the model declare them


def test_configs_exist_for_the_published_models():
    names = {os.path.basename(p)[:-5] for p in CONFIGS}
    assert {"bisenetv1_r18", "bisenetv1_r50", "bisenetv2", "fcn_r50_d8", "fcn_r101_d8", "pspnet_r50_d8",
            "pspnet_r101_d8", "deeplabv3plus_xception65"} <= names
    # The real-time families of issue 15, and one CamVid config per family.
    assert {"pidnet_s", "pidnet_m", "pidnet_l", "ddrnet_23_slim", "ddrnet_23", "ddrnet_39", "stdc1_seg50",
            "stdc1_seg75", "stdc2_seg50", "stdc2_seg75"} <= names
    camvid = {load_cfg(p).MODEL.NAME for p in CAMVID_CONFIGS}
    assert {"pidnet", "ddrnet", "stdc"} <= camvid


def test_bisenetv2_residual_branches_start_as_identity(seg_cfg):
    from segkit.models.backbones.bisenetv2 import GatherExpand

    layers = [m for m in build_model(seg_cfg("bisenetv2")).modules() if isinstance(m, GatherExpand)]
    assert len(layers) == 8 and all(torch.all(m.proj[-1].weight == 0) for m in layers)
    assert all(torch.all(m.conv1.bn.weight == 1) for m in layers)
