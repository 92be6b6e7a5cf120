"""Conv-BN folding: exact outputs, untouched original, which norms fold."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from segkit.models.classifier import create_classifier
from segkit.models.fuse import fuse_conv_bn
from segkit.models.layers import ConvBNAct

from .test_backbones import randomize_norms


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def test_convbnact_and_sequential_pairs() -> None:
    model = nn.Sequential(
        ConvBNAct(3, 8, 3, stride=2),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=True),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        ConvBNAct(8, 4, 1, norm="GN"),  # GroupNorm depends on the input: must stay
    )
    randomize_norms(model).train()
    fused = fuse_conv_bn(model)
    assert model.training and not fused.training  # the original is left as it was
    assert isinstance(model[0].bn, nn.BatchNorm2d) and isinstance(fused[0].bn, nn.Identity)
    assert isinstance(fused[2], nn.Identity) and isinstance(fused[4].bn, nn.GroupNorm)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert _rel_err(model.eval()(x), fused(x)) < 1e-5


def test_frozen_bn_and_fuse_pairs_protocol() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_dw = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
            self.bn_dw = FrozenBatchNorm2d(4)
            self.conv_pw = nn.Conv2d(4, 6, 1, bias=False)
            self.bn_pw = nn.BatchNorm2d(6)

        def fuse_pairs(self) -> list[tuple[str, str]]:
            return [("conv_dw", "bn_dw"), ("conv_pw", "bn_pw")]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn_pw(self.conv_pw(torch.relu(self.bn_dw(self.conv_dw(x)))))

    model = Custom()
    with torch.no_grad():
        model.bn_dw.running_var.uniform_(0.5, 2.0)
        model.bn_dw.weight.uniform_(0.5, 2.0)
        model.bn_dw.bias.normal_()
        model.bn_dw.running_mean.normal_()
    randomize_norms(model)
    fused = fuse_conv_bn(model)
    assert isinstance(fused.bn_dw, nn.Identity) and isinstance(fused.bn_pw, nn.Identity)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert _rel_err(model.eval()(x), fused(x)) < 1e-5


def test_classifier_fused() -> None:
    model = randomize_norms(create_classifier("resnet50d", num_classes=10)).eval()
    fused = fuse_conv_bn(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _rel_err(model(x), fused(x)) < 1e-5
        fused_cl = fuse_conv_bn(model).to(memory_format=torch.channels_last)
        assert _rel_err(model(x), fused_cl(x.contiguous(memory_format=torch.channels_last))) < 1e-4


def test_ibn_norms_are_kept() -> None:
    fused = fuse_conv_bn(create_classifier("resnet18_ibn_a", num_classes=3))
    # The IBN's BN half sees only some of the conv's channels: folding it would be wrong.
    assert type(fused.backbone.layer1[0].conv1.bn).__name__ == "IBN"
    assert isinstance(fused.backbone.layer1[0].conv2.bn, nn.Identity)
