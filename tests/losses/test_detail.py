"""STDC-Seg's detail targets and detail aggregation loss on hand-built cases."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from segkit.losses.detail import DetailAggregationLoss, detail_targets, dice_loss


def test_detail_target_on_a_two_class_edge():
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[:, :, 4:] = 1  # class 1 on the right half
    target = detail_targets(label)
    assert target.shape == (1, 1, 8, 8) and target.dtype == torch.float32
    expected = torch.zeros(8, 8)
    # The Laplacian is positive on the higher label's side: stride 1 marks column 4, stride 2 (upsampled
    # by nearest) columns 4-5. The zero padding makes the image border of the class-1 region an edge too:
    # column 7 and rows 0 and 7 at stride 1, rows 0-1 of columns 6-7 at stride 2.
    expected[:, 4:6] = 1
    expected[:, 7] = 1
    expected[[0, 1, 7], 6] = 1
    assert torch.equal(target[0, 0], expected)
    # The class-0 side is never marked; a constant class-0 map has no detail at all.
    assert target[0, 0, :, :4].sum() == 0
    assert detail_targets(torch.zeros(2, 8, 8, dtype=torch.long)).sum() == 0


def test_the_stride_4_level_alone_does_not_mark():
    # One class-1 pixel at (8, 8), a sample point of every level: stride 1 marks it, stride 2 (upsampled) the
    # 2x2 block from it, stride 4 the 4x4 block. Weighted 0.1, the stride-4 level alone only equals the 0.1
    # threshold, so its extra pixels are not detail: the target is the 2x2 block.
    label = torch.zeros(1, 16, 16, dtype=torch.long)
    label[0, 8, 8] = 1
    expected = torch.zeros(16, 16)
    expected[8:10, 8:10] = 1
    assert torch.equal(detail_targets(label)[0, 0], expected)


def test_detail_loss_is_bce_plus_dice():
    label = torch.zeros(2, 8, 8, dtype=torch.long)
    label[:, :, 4:] = 1
    logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    gt = detail_targets(label)
    loss = DetailAggregationLoss()(logits, label)
    expected = F.binary_cross_entropy_with_logits(logits, gt) + dice_loss(torch.sigmoid(logits), gt)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    # Dice with smoothing 1: a perfect prediction scores 0, an all-wrong one close to 1.
    assert dice_loss(gt, gt).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(1 - gt, gt).item() > 0.9
    with pytest.raises(ValueError, match="do not match"):
        DetailAggregationLoss()(torch.zeros(2, 1, 4, 8), label)
