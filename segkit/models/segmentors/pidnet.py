"""PIDNet (Xu et al., CVPR 2023): proportional (detail), integral (context) and derivative (boundary) branches.

PIDNet-S/M/L (MODEL.VARIANT pidnet_s, pidnet_m, pidnet_l) have the architecture of the official code: with 19
classes 7,625,715 / 28,538,515 / 36,939,571 parameters for inference, 7,720,935 / 28,763,111 / 37,314,311 with
the training-only heads. In training the model also returns the P branch's auxiliary logits ("aux_p") and
1-channel boundary logits from the D branch ("boundary"), both resized to the input; the boundary head's
loss and the boundary-aware OHEM term on the main logits are declared here for segkit.losses. (The official
code averages the P head's CE over every pixel, ignored ones as 0; here it is the mean over valid pixels, so
its 0.4 is not scaled down by the share of ignored pixels.)

The I branch is a DDRNet-style residual network to stride 64 with a pyramid pooling module; the P branch
stays at stride 8 and takes context through pixel-attention-guided fusion (Pag); the D branch, also at
stride 8, adds the I branch's features through 3x3 convs; the boundary-attention-guided fusion (Bag) mixes
P and I by the sigmoid of D.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ..heads.ddrnet import DAPPM, PAPPM, DDRHead, preact_conv
from ..layers import ConvBNAct, init_weights
from .base import Segmentor, output_align_corners, resize_logits
from .ddrnet import BasicBlock, Bottleneck, make_stage, stem, variant


class PagFusion(nn.Module):
    """Pixel-attention-guided fusion: per pixel, sigma = sigmoid(<f(p), g(i)>) over channels of 1x1 embeddings
    of the P features and the upsampled I features; returns (1 - sigma) * p + sigma * i."""

    def __init__(self, channels: int, mid_channels: int, norm: str = "BN", align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.embed_p = ConvBNAct(channels, mid_channels, 1, norm=norm, act=None)
        self.embed_i = ConvBNAct(channels, mid_channels, 1, norm=norm, act=None)

    def forward(self, p: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        i_embed = resize_logits(self.embed_i(i), p.shape[-2:], self.align_corners)
        sigma = torch.sigmoid((self.embed_p(p) * i_embed).sum(dim=1, keepdim=True))
        i = resize_logits(i, p.shape[-2:], self.align_corners)
        return (1 - sigma) * p + sigma * i


class LightBag(nn.Module):
    """PIDNet-S/M's boundary-attention-guided fusion: with sigma = sigmoid(d), two 1x1 conv-norm projections of
    (1 - sigma) * i + p and i + sigma * p, summed."""

    def __init__(self, channels: int, norm: str = "BN") -> None:
        super().__init__()
        self.proj_p = ConvBNAct(channels, channels, 1, norm=norm, act=None)
        self.proj_i = ConvBNAct(channels, channels, 1, norm=norm, act=None)

    def forward(self, p: torch.Tensor, i: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        sigma = torch.sigmoid(d)
        return self.proj_p((1 - sigma) * i + p) + self.proj_i(i + sigma * p)


class Bag(nn.Module):
    """PIDNet-L's boundary-attention-guided fusion: one pre-activated 3x3 conv of sigma * p + (1 - sigma) * i."""

    def __init__(self, channels: int, norm: str = "BN") -> None:
        super().__init__()
        self.conv = preact_conv(channels, channels, 3, norm)

    def forward(self, p: torch.Tensor, i: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        sigma = torch.sigmoid(d)
        return self.conv(sigma * p + (1 - sigma) * i)


class PIDNetSpec(NamedTuple):
    m: int  # residual blocks of stages 1-2 and of the P branch's stages
    n: int  # residual blocks of the I branch's stages 3-4
    planes: int
    ppm_channels: int
    head_channels: int


VARIANTS = {
    "pidnet_s": PIDNetSpec(2, 3, 32, 96, 128),
    "pidnet_m": PIDNetSpec(2, 3, 64, 96, 128),
    "pidnet_l": PIDNetSpec(3, 4, 64, 112, 256),
}


class PIDNet(Segmentor):
    """Three branches to stride 8 (P, D) and 64 (I), fused by Bag, one head at stride 8; P and D heads in training."""

    aux_names = ("aux_p", "boundary")
    # 0.4 x CE on the P head, 20 x weighted BCE on the boundary head, as published.
    default_aux_weights = (0.4, 20.0)
    aux_losses = {"aux_p": "ce", "boundary": "boundary_bce"}
    # OHEM on the main logits at the pixels whose predicted boundary probability exceeds LOSS.BOUNDARY_THRESH.
    joint_losses = {"boundary_ohem": ("boundary_ohem", ("main", "boundary"), 1.0)}
    head_names = ("head", "aux_p", "boundary")
    reads = frozenset({"MODEL.OUTPUT_ALIGN_CORNERS", "MODEL.VARIANT"})

    def __init__(self, spec: PIDNetSpec, num_classes: int, norm: str = "BN", align_corners: bool = False,
                 output_align_corners: bool | None = None) -> None:
        super().__init__()
        self.align_corners = align_corners
        # The last resize of the three outputs to the input size (the official pipeline: True).
        self.output_align_corners = align_corners if output_align_corners is None else output_align_corners
        m, n, p = spec.m, spec.n, spec.planes
        light = m == 2  # PIDNet-S/M: PAPPM and the light Bag; PIDNet-L: DAPPM and the full Bag.
        # I branch: a DDRNet-style network to stride 64.
        self.stem = stem(p, norm)
        self.layer1 = make_stage(BasicBlock, p, p, m, 1, norm)
        self.layer2 = make_stage(BasicBlock, p, 2 * p, m, 2, norm)
        self.layer3 = make_stage(BasicBlock, 2 * p, 4 * p, n, 2, norm)
        self.layer4 = make_stage(BasicBlock, 4 * p, 8 * p, n, 2, norm)
        self.layer5 = make_stage(Bottleneck, 8 * p, 8 * p, 2, 2, norm)
        self.spp = (PAPPM if light else DAPPM)(16 * p, spec.ppm_channels, 4 * p, norm, align_corners)
        # P branch at stride 8, fed by the I branch through Pag after stages 3 and 4.
        self.p_layer3 = make_stage(BasicBlock, 2 * p, 2 * p, m, 1, norm)
        self.p_layer4 = make_stage(BasicBlock, 2 * p, 2 * p, m, 1, norm)
        self.p_layer5 = make_stage(Bottleneck, 2 * p, 2 * p, 1, 1, norm)
        self.compress3 = ConvBNAct(4 * p, 2 * p, 1, norm=norm, act=None)
        self.compress4 = ConvBNAct(8 * p, 2 * p, 1, norm=norm, act=None)
        self.pag3 = PagFusion(2 * p, p, norm, align_corners)
        self.pag4 = PagFusion(2 * p, p, norm, align_corners)
        # D branch at stride 8: single unactivated blocks, the I branch added through 3x3 conv-norm.
        d3 = p if light else 2 * p
        self.d_layer3 = BasicBlock(2 * p, d3, act=False, norm=norm)
        self.d_layer4 = Bottleneck(p, p, norm=norm) if light else BasicBlock(2 * p, 2 * p, act=False, norm=norm)
        self.d_layer5 = Bottleneck(2 * p, 2 * p, norm=norm)
        self.diff3 = ConvBNAct(4 * p, d3, 3, norm=norm, act=None)
        self.diff4 = ConvBNAct(8 * p, 2 * p, 3, norm=norm, act=None)
        self.bag = LightBag(4 * p, norm) if light else Bag(4 * p, norm)
        self.head = DDRHead(4 * p, spec.head_channels, num_classes, norm)
        self.aux_p = DDRHead(2 * p, spec.head_channels, num_classes, norm)
        self.boundary = DDRHead(2 * p, p, 1, norm)
        init_weights(self, conv_init="kaiming_fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        size, ac = x.shape[-2:], self.align_corners
        x = F.relu(self.layer2(F.relu(self.layer1(self.stem(x)))))
        p, d = self.p_layer3(x), self.d_layer3(x)
        x = F.relu(self.layer3(x))
        p = self.pag3(p, self.compress3(x))
        d = d + resize_logits(self.diff3(x), d.shape[-2:], ac)
        # The heads see the activated features: the official code's in-place ReLU reaches the tensors they read.
        aux_p_in = p = F.relu(p)
        x = F.relu(self.layer4(x))
        p, d = self.p_layer4(p), self.d_layer4(F.relu(d))
        p = self.pag4(p, self.compress4(x))
        d = d + resize_logits(self.diff4(x), d.shape[-2:], ac)
        boundary_in = d = F.relu(d)
        p, d = self.p_layer5(F.relu(p)), self.d_layer5(d)
        i = resize_logits(self.spp(self.layer5(x)), p.shape[-2:], ac)
        out_ac = self.output_align_corners
        logits = resize_logits(self.head(self.bag(p, i, d)), size, out_ac)
        aux: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        if self.training:
            aux["aux_p"] = resize_logits(self.aux_p(aux_p_in), size, out_ac)
            aux["boundary"] = resize_logits(self.boundary(boundary_in), size, out_ac)
        return self.outputs(logits, aux)


def build_pidnet(cfg: CfgNode) -> PIDNet:
    spec = VARIANTS[variant(cfg, list(VARIANTS))]
    return PIDNet(spec, cfg.MODEL.NUM_CLASSES, norm=cfg.MODEL.NORM, align_corners=cfg.MODEL.ALIGN_CORNERS,
                  output_align_corners=output_align_corners(cfg))
