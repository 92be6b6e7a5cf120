"""PIDNet, DDRNet and STDC-Seg: the published sizes (exact parameters, FLOPs within 0.5%), every variant at odd
input sizes, the training outputs, and the STDC backbone in the zoo.

Counts and shapes of the full-size models are taken on the meta device (nothing is allocated or computed);
the real forward passes use the smallest variants at small inputs.
"""
from __future__ import annotations

import pytest
import torch

from segkit.config import load_cfg
from segkit.losses import build_criterion
from segkit.models import build_backbone, build_model, create_classifier
from segkit.utils.analysis import count_flops, count_params

# (MODEL.NAME, MODEL.VARIANT or backbone) -> (params in training, params deployed, GFLOPs deployed at 1024x2048),
# as counted from the official implementations (issue 15).
PUBLISHED = {
    ("pidnet", "pidnet_s"): (7_720_935, 7_625_715, 94.39),
    ("pidnet", "pidnet_m"): (28_763_111, 28_538_515, 354.66),
    ("pidnet", "pidnet_l"): (37_314_311, 36_939_571, 549.87),
    ("ddrnet", "ddrnet_23_slim"): (5_734_342, 5_695_987, 72.56),
    ("ddrnet", "ddrnet_23"): (20_299_366, 20_148_947, 286.12),
    ("ddrnet", "ddrnet_39"): (32_660_838, 32_360_275, 562.23),
    ("stdc", "stdc1"): (8_572_896, 8_275_104, 134.90),
    ("stdc", "stdc2"): (12_603_360, 12_305_568, 187.65),
}
IDS = [v for _, v in PUBLISHED]


def _cfg(name: str, variant: str, *opts: str):
    key = "MODEL.BACKBONE.NAME" if name == "stdc" else "MODEL.VARIANT"
    return load_cfg(None, ["MODEL.NAME", name, key, variant, *opts])


def _meta_model(name: str, variant: str):
    with torch.device("meta"):
        return build_model(_cfg(name, variant))


@pytest.mark.parametrize("name,variant", PUBLISHED, ids=IDS)
def test_parameters_and_flops_match_the_official_models(name, variant):
    train, deploy, gflops = PUBLISHED[(name, variant)]
    model = _meta_model(name, variant)
    assert count_params(model) == {"params": train, "params_no_aux": deploy}
    # The aux heads are training-only: the deployed forward never touches them.
    measured = count_flops(model, (1024, 2048)) / 1e9
    assert measured == pytest.approx(gflops, rel=0.005)


@pytest.mark.parametrize("name,variant", PUBLISHED, ids=IDS)
def test_every_variant_returns_input_size_logits_at_odd_sizes(name, variant):
    model = _meta_model(name, variant).eval()
    for h, w in ((67, 93), (121, 250), (1, 1)):
        with torch.no_grad():
            out = model(torch.empty(1, 3, h, w, device="meta"))
        assert out.shape == (1, 19, h, w)


@pytest.mark.parametrize(
    "name,variant,aux",
    [
        ("pidnet", "pidnet_s", {"aux_p": 5, "boundary": 1}),
        ("ddrnet", "ddrnet_23_slim", {"aux": 5}),
        ("stdc", "stdc1", {"aux16": 5, "aux32": 5, "detail": 1}),
    ],
    ids=["pidnet", "ddrnet", "stdc"],
)
def test_training_outputs_and_their_losses(name, variant, aux):
    cfg = _cfg(name, variant, "MODEL.NUM_CLASSES", "5")
    model = build_model(cfg).train()
    x = torch.randn(2, 3, 45, 71)
    logits, outputs = model(x)
    assert logits.shape == (2, 5, 45, 71)
    assert {k: v.shape for k, v in outputs.items()} == {k: (2, c, 45, 71) for k, c in aux.items()}
    assert tuple(outputs) == model.aux_names
    # Every output reaches the criterion through the loss its model declares, and everything trains.
    target = torch.randint(0, 5, (2, 45, 71))
    target[:, :5] = 255
    total, parts = build_criterion(cfg, model)((logits, outputs), target)
    assert {f"loss_{k}" for k in aux} <= set(parts) and torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for n in model.aux_names for p in getattr(model, n).parameters())


def test_pidnet_declares_its_published_losses():
    model = _meta_model("pidnet", "pidnet_s")
    crit = build_criterion(_cfg("pidnet", "pidnet_s"), model)
    assert type(crit.aux["aux_p"]).__name__ == "CrossEntropy"  # CE, not OHEM, on the P head
    assert type(crit.aux["boundary"]).__name__ == "BoundaryBCE"
    assert crit.aux_weights == {"aux_p": 0.4, "boundary": 20.0}
    assert crit.joint_sources == {"boundary_ohem": ("main", "boundary")} and crit.joint_weights["boundary_ohem"] == 1.0


def test_variant_names_are_checked():
    with pytest.raises(ValueError, match="MODEL.VARIANT 'pidnet_xl'.*pidnet_s"):
        build_model(_cfg("pidnet", "pidnet_xl"))
    with pytest.raises(ValueError, match="ddrnet_23_slim"):
        build_model(_cfg("ddrnet", "pidnet_s"))
    assert _meta_model("pidnet", "").spp.__class__.__name__ == "PAPPM"  # empty: the smallest, PIDNet-S
    assert _meta_model("pidnet", "pidnet_l").spp.__class__.__name__ == "DAPPM"


@pytest.mark.parametrize("name", ["stdc1", "stdc2"])
def test_stdc_backbone_keeps_the_zoo_contract(name):
    for output_stride, strides in ((32, (4, 8, 16, 32)), (16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))):
        backbone = build_backbone(name, output_stride=output_stride).eval()
        shapes = backbone.output_shape()
        assert [s.stride for s in shapes.values()] == list(strides)
        assert [s.channels for s in shapes.values()] == [64, 256, 512, 1024]
        with torch.no_grad():
            feats = backbone(torch.randn(1, 3, 61, 83))
        assert list(feats) == ["c2", "c3", "c4", "c5"]
        for f, s in zip(feats.values(), shapes.values()):
            assert f.shape[1] == s.channels and f.shape[2] == -(-61 // s.stride)


def test_stdc_classifier_for_pretraining():
    model = create_classifier("stdc1", num_classes=10).eval()
    assert model.dropout.p == 0.2  # the official ImageNet recipe's dropout
    assert model.num_features == 1024
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    # The segmentation model loads exactly the classifier's backbone.
    seg = build_model(_cfg("stdc", "stdc1"))
    assert seg.backbone.state_dict().keys() == model.backbone.state_dict().keys()


def _n(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("kind", ["DAPPM", "PAPPM"])
def test_pyramid_pooling_modules(kind):
    from segkit.models import heads

    c_in, b, c_out = 16, 8, 12
    module = getattr(heads, kind)(c_in, b, c_out).eval()
    with torch.no_grad():
        assert module(torch.randn(2, c_in, 9, 13)).shape == (2, c_out, 9, 13)
    # Pre-activation 1x1 units: the input and four poolings to b channels, compression of 5b, the shortcut.
    base = 5 * (2 * c_in + c_in * b) + (2 * 5 * b + 5 * b * c_out) + (2 * c_in + c_in * c_out)
    # DAPPM refines each level by its own 3x3 unit; PAPPM all four at once, a grouped 3x3 (4 groups).
    process = 4 * (2 * b + 9 * b * b) if kind == "DAPPM" else 2 * 4 * b + 9 * 4 * b * b
    assert _n(module) == base + process


def test_ddr_head_and_the_stdc_options_of_the_bisenet_heads():
    from segkit.models.heads import DDRHead, FeatureFusion, SegHead

    head = DDRHead(16, 8, 1)  # PIDNet's boundary head: one output channel
    assert head(torch.randn(2, 16, 5, 7)).shape == (2, 1, 5, 7)
    assert _n(head) == 2 * 16 + 9 * 16 * 8 + 2 * 8 + 8 * 1 + 1
    assert _n(SegHead(16, 8, 5, bias=False)) == _n(SegHead(16, 8, 5)) - 5
    fusion = FeatureFusion(24, 16, reduction=4)  # the BiSeNet paper's attention: 16 -> 4 -> 16, no bias
    assert fusion(torch.randn(2, 8, 5, 7), torch.randn(2, 16, 5, 7)).shape == (2, 16, 5, 7)
    assert _n(fusion) == 24 * 16 + 2 * 16 + 2 * 16 * 4


def test_output_resize_rule_by_hand():
    # Width 2 -> 4 of the row [0, 3]. align_corners=True samples at 0, 1/3, 2/3, 1 of the span: 0, 1, 2, 3.
    # False samples at (x + 0.5) * 2/4 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]: 0, 0.75, 2.25, 3.
    from segkit.models.segmentors import resize_logits

    row = torch.tensor([[[[0.0, 3.0]]]])
    assert resize_logits(row, (1, 4), align_corners=True).flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert resize_logits(row, (1, 4), align_corners=False).flatten().tolist() == [0.0, 0.75, 2.25, 3.0]


@pytest.mark.parametrize("output_align_corners", [None, True, False])
def test_pidnet_last_resize_follows_output_align_corners(output_align_corners):
    """PIDNet's official pipeline resizes its stride-8 logits to the input with align_corners=True while the
    network inside uses False: MODEL.OUTPUT_ALIGN_CORNERS sets the last resize alone (None: MODEL.ALIGN_CORNERS)."""
    cfg = load_cfg("configs/cityscapes/pidnet_s.yaml", ["MODEL.OUTPUT_ALIGN_CORNERS", str(output_align_corners)])
    model = build_model(cfg).eval()
    assert model.align_corners is False
    # The head's stride-8 output for an 8x16 input is 1x2; make it the row [0, 3] in every class.
    model.head.forward = lambda x: torch.tensor([0.0, 3.0]).view(1, 1, 1, 2).expand(1, 19, 1, 2)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 8, 16))[0, 0, 0]
    x = torch.arange(16.0)
    if not output_align_corners:  # None on the command line: as MODEL.ALIGN_CORNERS, False
        expected = 3 * ((x + 0.5) / 8 - 0.5).clamp(0, 1)  # source x = (x + 0.5) * 2 / 16 - 0.5
    else:
        expected = x / 5  # source x = x * (2 - 1) / (16 - 1), times 3
    torch.testing.assert_close(out, expected)


def test_official_pipeline_resizes_are_the_configs_defaults():
    assert build_model(load_cfg("configs/cityscapes/pidnet_s.yaml")).output_align_corners is True
    assert build_model(load_cfg("configs/camvid/pidnet_s.yaml")).output_align_corners is True
    stdc = build_model(load_cfg("configs/cityscapes/stdc1_seg50.yaml"))
    assert stdc.align_corners is True and stdc.output_align_corners is True
    ddr = build_model(load_cfg("configs/cityscapes/ddrnet_23_slim.yaml"))
    assert ddr.align_corners is False and ddr.output_align_corners is False
