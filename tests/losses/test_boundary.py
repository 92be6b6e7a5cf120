"""PIDNet's boundary ground truth and losses on hand-built cases, and the edges against OpenCV's Canny."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from segkit.losses import OhemCrossEntropy
from segkit.losses.boundary import BoundaryAwareOhem, BoundaryBCE, boundary_targets, canny_edges


def test_boundary_targets_of_a_tiny_label_map():
    label = torch.zeros(1, 20, 20, dtype=torch.long)
    label[:, :, 10:] = 1  # one vertical edge between columns 9 and 10
    edges = canny_edges(label)[0]
    # Canny keeps one side of a step: the pixel before the change, on every row.
    assert edges.nonzero()[:, 1].unique().tolist() == [9] and edges[:, 9].all()
    target = boundary_targets(label)[0]
    # Edges cleared within 6 px of the border (rows 0-5, 14-19), then dilated 4x4 around the anchor (2, 2):
    # columns 9-2+1 .. 9+2, rows 6-1 .. 13+2.
    expected = torch.zeros(20, 20)
    expected[5:16, 8:12] = 1
    assert torch.equal(target, expected)
    assert torch.equal(boundary_targets(torch.zeros(2, 20, 20, dtype=torch.long)), torch.zeros(2, 20, 20))


def _official(label: np.ndarray) -> np.ndarray:
    """The official PIDNet data pipeline's boundary map: Canny, 6 px border cleared, 4x4 dilation."""
    edge = cv2.Canny(label, 0.1, 0.2)
    edge = np.pad(edge[6:-6, 6:-6], ((6, 6), (6, 6)), mode="constant")
    return (cv2.dilate(edge, np.ones((4, 4), np.uint8), iterations=1) > 50).astype(np.float32)


@pytest.mark.parametrize("kind", ["blocks", "blobs", "noise"])
def test_boundary_targets_equal_the_official_opencv_pipeline(kind):
    rng = np.random.default_rng(len(kind))
    maps = []
    for _ in range(3):
        if kind == "blocks":  # regions with straight edges, ignore included
            small = rng.choice([0, 3, 7, 255], size=(4, 6)).astype(np.uint8)
            maps.append(cv2.resize(small, (70, 45), interpolation=cv2.INTER_NEAREST))
        elif kind == "blobs":  # curved edges in every direction
            field = cv2.GaussianBlur(rng.normal(size=(45, 70)), (0, 0), 4)
            maps.append((np.digitize(field, np.quantile(field, [0.25, 0.5, 0.75])) * 5).astype(np.uint8))
        else:  # the worst case for the direction sectors
            maps.append(rng.integers(0, 3, (45, 70)).astype(np.uint8))
    label = torch.from_numpy(np.stack(maps)).long()
    expected = torch.from_numpy(np.stack([_official(m) for m in maps]))
    assert torch.equal(boundary_targets(label), expected)


def test_weighted_bce_balances_the_classes():
    label = torch.zeros(2, 20, 20, dtype=torch.long)
    label[0, :, 10:] = 1
    gt = boundary_targets(label)
    pos, total = gt.sum().item(), gt.numel()
    # At logit 0 every pixel costs log 2; positives weigh neg/total, negatives pos/total.
    loss = BoundaryBCE()(torch.zeros(2, 1, 20, 20), label)
    expected = math.log(2) * (pos * (total - pos) / total + (total - pos) * pos / total) / total
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # A confident right answer costs almost nothing, a confident wrong one a lot.
    right = BoundaryBCE()((gt * 2 - 1)[:, None] * 20, label)
    wrong = BoundaryBCE()((1 - gt * 2)[:, None] * 20, label)
    assert right.item() < 1e-6 < 1.0 < wrong.item()
    with pytest.raises(ValueError, match="do not match"):
        BoundaryBCE()(torch.zeros(2, 1, 10, 20), label)


def test_boundary_aware_ohem_keeps_only_confident_boundary_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, 7, requires_grad=True)
    target = torch.randint(0, 4, (2, 6, 7))
    target[1, 0] = 255
    boundary = torch.full((2, 1, 6, 7), -5.0, requires_grad=True)
    with torch.no_grad():
        boundary[0, 0, 1:4, 2] = 5.0  # clearly on the boundary
        boundary[1, 0, 3, 3:6] = math.log(0.8 / 0.2) + 1e-3  # just above 0.8
        boundary[1, 0, 4, 3:6] = math.log(0.8 / 0.2) - 1e-3  # just below: left out
        boundary[1, 0, 0, 0] = 5.0  # on the boundary but ignored
    mask = torch.zeros(2, 6, 7, dtype=torch.bool)
    mask[0, 1:4, 2] = True
    mask[1, 3, 3:6] = True
    # thresh 1.0 keeps every valid pixel: the term is the plain CE over the boundary pixels.
    loss = BoundaryAwareOhem(OhemCrossEntropy(thresh=1.0, min_kept_ratio=0.0), 0.8)(logits, boundary, target)
    expected = F.cross_entropy(logits, torch.where(mask, target, 255), ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert boundary.grad is None  # the boundary head only selects the pixels
    assert (logits.grad.abs().sum(1) > 0).eq(mask).all()
    # No pixel above the threshold: zero, with a gradient, not NaN.
    none = BoundaryAwareOhem(OhemCrossEntropy())(logits, torch.full_like(boundary, -9.0), target)
    assert none.item() == 0.0 and none.requires_grad
