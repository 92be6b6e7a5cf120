"""ResNet family: exact parameter counts, variant structure (-C, -D, SE, IBN-a/b), dilation, norms, freezing."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from segkit.models.backbones import build_backbone
from segkit.models.backbones.resnet import IBN, MODELS, Bottleneck
from segkit.models.classifier import create_classifier
from segkit.models.layers import DropPath

# The reference implementations' 1000-class classifiers (torchvision == timm).
EXACT_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnet50c": 25_576_264,  # the deep stem adds 19,232 over resnet50; -D's average pool adds nothing
    "resnet50d": 25_576_264,
    "seresnet50": 28_088_024,
}
DEPTHS = (18, 34, 50, 101, 152)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registry_names() -> None:
    variants = ("resnet{}", "resnet{}c", "resnet{}d", "seresnet{}", "resnet{}_ibn_a", "resnet{}_ibn_b")
    expected = {p.format(d) for d in DEPTHS for p in variants}
    assert set(MODELS) == expected


@pytest.mark.parametrize("name", sorted(EXACT_COUNTS))
def test_classifier_param_count(name: str) -> None:
    with torch.device("meta"):
        assert _count(create_classifier(name)) == EXACT_COUNTS[name]


@pytest.mark.parametrize("depth", (18, 101))  # a basic-block and a bottleneck depth; 50 is exact above
def test_variant_counts_match_timm(depth: int) -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        for name in (f"resnet{depth}d", f"seresnet{depth}"):
            assert _count(create_classifier(name)) == _count(timm.create_model(name)), name


@pytest.mark.parametrize("depth", (101, 152))  # timm registers -C for 50/101/152 only; 50 is exact above
def test_resnet_c_counts_match_timm(depth: int) -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        assert _count(create_classifier(f"resnet{depth}c")) == _count(timm.create_model(f"resnet{depth}c"))


@pytest.mark.parametrize("depth", DEPTHS)
def test_ibn_counts(depth: int) -> None:
    with torch.device("meta"):
        base, ibn_a, ibn_b = (_count(create_classifier(f"resnet{depth}{s}")) for s in ("", "_ibn_a", "_ibn_b"))
    expansion = 4 if depth >= 50 else 1
    assert ibn_a == base  # half-IN + half-BN have as many affine parameters as the BN they replace
    # IBN-b adds an affine IN after the last block of stages 1 and 2 (the stem's IN replaces its BN).
    assert ibn_b == base + 2 * (64 + 128) * expansion


def test_ibn_a_structure() -> None:
    backbone = build_backbone("resnet50_ibn_a")
    for i, layer in enumerate((backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4)):
        for block in layer:
            norm = block.conv1.bn
            if i < 3:
                assert isinstance(norm, IBN) and norm.half == block.conv1.conv.out_channels // 2
            else:
                assert isinstance(norm, nn.BatchNorm2d)
    assert isinstance(backbone.stem.conv1.bn, nn.BatchNorm2d)


def test_ibn_b_structure() -> None:
    backbone = build_backbone("resnet18_ibn_b")
    assert isinstance(backbone.stem.conv1.bn, nn.InstanceNorm2d)
    post = [[isinstance(b.post_norm, nn.InstanceNorm2d) for b in layer] for layer in backbone.stages()[1:]]
    assert post == [[False, True], [False, True], [False, False], [False, False]]


def test_ibn_forward_backward() -> None:
    for name in ("resnet18_ibn_a", "resnet18_ibn_b"):
        backbone = build_backbone(name)
        feats = backbone(torch.randn(2, 3, 64, 64))
        feats["c5"].mean().backward()
        assert all(p.grad is not None for p in backbone.parameters())


def test_resnet_d_structure() -> None:
    backbone = build_backbone("resnet50d", output_stride=16)
    assert [m.conv.out_channels for m in backbone.stem if hasattr(m, "conv")] == [32, 32, 64]
    pools = [type(layer[0].downsample.pool) for layer in backbone.stages()[1:]]
    # Stage 1 keeps its resolution, stage 4 is dilated: neither has a stride to average over.
    assert pools == [nn.Identity, nn.AvgPool2d, nn.AvgPool2d, nn.Identity]
    assert backbone.layer2[0].downsample.conv.conv.stride == (1, 1)


def test_resnet_c_structure_at_output_stride_8() -> None:
    """mmseg's ResNetV1c-D8: deep stem, strided 1x1 shortcuts, stages 3/4 dilated 2/4 with their first
    blocks at 1/2 (contract_dilation) and no stride anywhere in them, shortcut included."""
    backbone = build_backbone("resnet50c", output_stride=8)
    assert [m.conv.out_channels for m in backbone.stem if hasattr(m, "conv")] == [32, 32, 64]
    layers = backbone.stages()[1:]
    assert all(isinstance(layer[0].downsample.pool, nn.Identity) for layer in layers)
    assert [layer[0].downsample.conv.conv.stride[0] for layer in layers] == [1, 2, 1, 1]
    assert [[b.conv2.conv.dilation[0] for b in layer] for layer in layers[2:]] == [[1, 2, 2, 2, 2, 2], [2, 4, 4]]
    assert all(b.conv2.conv.stride == (1, 1) for layer in layers[2:] for b in layer)
    assert {k: (s.channels, s.stride) for k, s in backbone.output_shape().items()} == {
        "c2": (256, 4), "c3": (512, 8), "c4": (1024, 8), "c5": (2048, 8)
    }
    feats = build_backbone("resnet18c", output_stride=8).eval()(torch.randn(1, 3, 67, 93))
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(17, 24), (9, 12), (9, 12), (9, 12)]


def test_se_every_block() -> None:
    backbone = build_backbone("seresnet50")
    blocks = [b for layer in backbone.stages()[1:] for b in layer]
    assert len(blocks) == 16
    assert [b.se.reduce.out_channels for b in (backbone.layer1[0], backbone.layer4[0])] == [16, 128]


def test_dilation_first_block_keeps_previous() -> None:
    backbone = build_backbone("resnet50", output_stride=8)
    dil = [[b.conv2.conv.dilation[0] for b in layer] for layer in (backbone.layer3, backbone.layer4)]
    assert dil == [[1, 2, 2, 2, 2, 2], [2, 4, 4]]
    assert all(b.conv2.conv.stride == (1, 1) for layer in (backbone.layer3, backbone.layer4) for b in layer)
    assert isinstance(backbone.layer3[0], Bottleneck)


@pytest.mark.parametrize("norm,norm_type", [("GN", nn.GroupNorm), ("FrozenBN", FrozenBatchNorm2d), ("SyncBN", nn.SyncBatchNorm)])
def test_norm_selectable(norm: str, norm_type: type) -> None:
    backbone = build_backbone("resnet18", norm=norm)
    norms = [m for m in backbone.modules() if isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, FrozenBatchNorm2d))]
    assert norms and all(isinstance(m, norm_type) for m in norms)
    backbone.eval()  # SyncBN needs a process group in training only
    with torch.no_grad():
        assert backbone(torch.randn(1, 3, 64, 64))["c5"].shape == (1, 512, 2, 2)


def test_frozen_stages() -> None:
    backbone = build_backbone("resnet18", frozen_stages=1).train()
    frozen, trained = backbone.stages()[:2], backbone.stages()[2:]
    assert all(not p.requires_grad for s in frozen for p in s.parameters())
    assert all(p.requires_grad for s in trained for p in s.parameters())
    assert not backbone.stem.conv1.bn.training and not backbone.layer1[0].conv1.bn.training
    assert backbone.layer2[0].conv1.bn.training
    running = backbone.stem.conv1.bn.running_mean.clone()
    backbone(torch.randn(2, 3, 64, 64))
    assert torch.equal(running, backbone.stem.conv1.bn.running_mean)


def test_drop_path_rises_with_depth() -> None:
    backbone = build_backbone("resnet18", drop_path_rate=0.2)
    rates = [getattr(b.drop_path, "rate", 0.0) for layer in backbone.stages()[1:] for b in layer]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    assert all(a < b for a, b in zip(rates, rates[1:]))
    assert isinstance(backbone.layer4[1].drop_path, DropPath)
    plain = build_backbone("resnet18", drop_path_rate=0.0)
    plain.load_state_dict(backbone.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # identity in eval: the same weights without drop path compute the same
        assert torch.equal(backbone.eval()(x)["c5"], plain.eval()(x)["c5"])


def test_channels_last_matches() -> None:
    backbone = build_backbone("resnet50d").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = backbone(x)["c5"]
        backbone = backbone.to(memory_format=torch.channels_last)
        out = backbone(x.to(memory_format=torch.channels_last))["c5"]
    assert torch.allclose(ref, out, rtol=1e-4, atol=1e-5)


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="output_stride"):
        build_backbone("resnet18", output_stride=4)
    with pytest.raises(ValueError, match="norm"):
        build_backbone("resnet18", norm="LN")


def test_init_zeroes_each_blocks_last_norm_and_keeps_se_biases() -> None:
    se = build_backbone("seresnet18")
    block = se.layer1[0]
    assert torch.all(block.conv2.bn.weight == 0) and torch.all(block.conv1.bn.weight == 1)
    assert block.se.reduce.bias.abs().sum() > 0  # PyTorch's default bias init, as torchvision and timm keep it
    deep = build_backbone("resnet18d")
    assert torch.all(deep.stem.conv2.bn.weight == 1)  # only the blocks' last norms start at zero
    assert torch.all(build_backbone("resnet50", zero_init_last=False).layer1[0].conv3.bn.weight == 1)
