"""STDC-Seg's detail aggregation loss: BCE + Dice of 1-channel detail logits against multi-scale Laplacian
boundaries of the label map, built on the fly on the labels' device."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .binary import BinaryMapLoss

_LAPLACIAN = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
# Strides of the Laplacian pyramid and the weights fusing its levels, as published.
DETAIL_STRIDES = (1, 2, 4)
DETAIL_FUSE_WEIGHTS = (0.6, 0.3, 0.1)
DETAIL_THRESH = 0.1


def detail_targets(label: torch.Tensor) -> torch.Tensor:
    """Detail ground truth [N,1,H,W] in {0, 1} (float32) of a label map [N,H,W].

    At strides 1, 2 and 4 the label map (ignore value included) is convolved with a 3x3 Laplacian, clamped at
    0, upsampled back (nearest) and binarised (> 0.1); the levels are fused with weights 0.6 / 0.3 / 0.1 and
    binarised again (> 0.1). The comparison is in float32 as in the official code, where 0.1 x the stride-4
    level alone equals the threshold and does not pass it: a pixel is detail where the stride-1 or stride-2
    level marks it.
    """
    x = label[:, None].float()
    kernel = _LAPLACIAN.to(x.device).view(1, 1, 3, 3)
    fused = torch.zeros_like(x)
    for stride, w in zip(DETAIL_STRIDES, DETAIL_FUSE_WEIGHTS):
        level = F.conv2d(x, kernel, stride=stride, padding=1).clamp_min(0)
        level = F.interpolate(level, size=x.shape[-2:], mode="nearest")
        fused = fused + w * (level > DETAIL_THRESH).float()
    return (fused > DETAIL_THRESH).float()


def dice_loss(prob: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - (2 |p t| + s) / (|p| + |t| + s) per sample, averaged over the batch."""
    p, t = prob.flatten(1), target.flatten(1)
    return (1 - (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)).mean()


class DetailAggregationLoss(BinaryMapLoss):
    """BCE + Dice of detail logits [N,1,H,W] (at the label's size) against `detail_targets(label)`.

    Every pixel counts, ignored ones included, as published.
    """

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        gt = detail_targets(target)
        return F.binary_cross_entropy_with_logits(logits, gt) + dice_loss(torch.sigmoid(logits), gt)
