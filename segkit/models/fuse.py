"""Conv + BatchNorm folding for inference: `fuse_conv_bn(model)` returns a fused copy.

Pairs found: any module with a `conv` (Conv2d) and a `bn` attribute (ConvBNAct and everything
built like it), pairs a module lists in `fuse_pairs() -> [(conv_attr, bn_attr), ...]`, and a
Conv2d directly followed by a BatchNorm in an nn.Sequential. The folded norm becomes Identity.
Only norms with fixed statistics fold (BatchNorm/SyncBatchNorm in eval with running stats,
FrozenBatchNorm2d); GroupNorm, InstanceNorm and IBN are left in place.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d


def _foldable(conv: object, norm: object) -> bool:
    if not isinstance(conv, nn.Conv2d):
        return False
    if isinstance(norm, FrozenBatchNorm2d):
        return norm.weight.shape[0] == conv.out_channels
    return (
        isinstance(norm, nn.modules.batchnorm._BatchNorm)
        and norm.running_mean is not None
        and norm.num_features == conv.out_channels
    )


@torch.no_grad()
def fold_bn_into_conv(conv: nn.Conv2d, norm: nn.Module) -> None:
    """Scale the conv's kernel and set its bias so that conv alone computes norm(conv(x)) in eval."""
    weight = norm.weight if norm.weight is not None else torch.ones_like(norm.running_var)
    bias = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_mean)
    scale = weight * torch.rsqrt(norm.running_var + norm.eps)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    old_bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    new_bias = (old_bias - norm.running_mean) * scale + bias
    conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of `model` with every foldable conv/norm pair folded into the conv."""
    fused = copy.deepcopy(model).eval()
    for module in list(fused.modules()):
        pairs = list(module.fuse_pairs()) if hasattr(module, "fuse_pairs") else [("conv", "bn")]
        for conv_name, bn_name in pairs:
            conv, norm = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if _foldable(conv, norm):
                fold_bn_into_conv(conv, norm)
                setattr(module, bn_name, nn.Identity())
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, norm = module._modules[a], module._modules[b]
                if _foldable(conv, norm):
                    fold_bn_into_conv(conv, norm)
                    module._modules[b] = nn.Identity()
    return fused


def prepare_for_inference(
    model: nn.Module, device: torch.device | str = "cpu", half: bool = False, channels_last: bool = False,
    fuse: bool = False,
) -> nn.Module:
    """An eval-mode copy of `model` on `device`, optionally BN-folded, in fp16 and/or channels_last."""
    m = fuse_conv_bn(model) if fuse else copy.deepcopy(model).eval()
    m = m.to(device)
    if half:
        m = m.half()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m
