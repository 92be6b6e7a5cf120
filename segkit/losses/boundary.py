"""PIDNet's boundary losses: weighted BCE against label-map boundaries, and boundary-aware OHEM on the main head.

The boundary ground truth is built on the fly from the label batch, on the labels' device: Canny edges of
the label map (computed here in torch, pixel for pixel what OpenCV's `cv2.Canny(label, 0.1, 0.2)` gives:
every label change is an edge, thinned by Canny's non-maximum suppression), cleared within 6 pixels of the
border and dilated by a 4x4 square, as the official data pipeline does. The official pipeline draws the edges
on the full-size label before random scaling and cropping; here they are drawn on the crop, so the band is
about 4 pixels wide at every scale, and a crop's padding (ignore) meets the image at an edge.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .binary import BinaryMapLoss
from .ohem import OhemCrossEntropy

EDGE_BORDER = 6  # pixels along the image border where the official pipeline clears the edges
EDGE_DILATION = 4  # side of the square the edges are dilated by
# tan(22.5 deg) in OpenCV's 15-bit fixed point: Canny's gradient-direction sectors.
_TG22 = 13573
_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def canny_edges(label: torch.Tensor) -> torch.Tensor:
    """Canny edges [N,H,W] (bool) of a label map [N,H,W], as OpenCV's Canny with thresholds below 1.

    Such thresholds keep every pixel with a non-zero gradient that survives non-maximum suppression, so
    only the suppression matters: 3x3 Sobel gradients (replicated border), L1 magnitude, the magnitude
    compared along the gradient direction quantised to 4 sectors, with OpenCV's tie-breaking.
    """
    x = F.pad(label[:, None].float(), (1, 1, 1, 1), mode="replicate")
    k = _SOBEL.to(x.device)
    # Label values are small integers: the float convolution is exact, the rounding only changes the type.
    dx = F.conv2d(x, k.view(1, 1, 3, 3))[:, 0].round().long()
    dy = F.conv2d(x, k.t().reshape(1, 1, 3, 3))[:, 0].round().long()
    ax, ay = dx.abs(), dy.abs()
    mag = ax + ay
    padded = F.pad(mag, (1, 1, 1, 1))  # outside the image the magnitude is 0, as in OpenCV's buffer
    h, w = mag.shape[-2:]

    def shifted(di: int, dj: int) -> torch.Tensor:
        return padded[:, 1 + di : 1 + di + h, 1 + dj : 1 + dj + w]

    tg22 = ax * _TG22
    ay_fixed = ay << 15
    horizontal = ay_fixed < tg22
    vertical = ay_fixed > tg22 + (ax << 16)
    keep_h = (mag > shifted(0, -1)) & (mag >= shifted(0, 1))
    keep_v = (mag > shifted(-1, 0)) & (mag >= shifted(1, 0))
    anti = (dx * dy) < 0  # gradient along the anti-diagonal
    keep_d = torch.where(
        anti, (mag > shifted(-1, 1)) & (mag > shifted(1, -1)), (mag > shifted(-1, -1)) & (mag > shifted(1, 1))
    )
    keep = torch.where(horizontal, keep_h, torch.where(vertical, keep_v, keep_d))
    return (mag > 0) & keep


def boundary_targets(label: torch.Tensor, border: int = EDGE_BORDER, dilation: int = EDGE_DILATION) -> torch.Tensor:
    """PIDNet's boundary ground truth [N,H,W] in {0, 1} (float32): Canny edges of the label map, none within
    `border` pixels of the image border, dilated by a `dilation` x `dilation` square."""
    edges = canny_edges(label)
    if border > 0:
        edges[:, :border] = False
        edges[:, -border:] = False
        edges[:, :, :border] = False
        edges[:, :, -border:] = False
    # OpenCV anchors an even kernel at its centre (k // 2): pixel j takes the maximum over j - k//2 .. j + (k-1)//2.
    lo, hi = dilation // 2, (dilation - 1) // 2
    padded = F.pad(edges[:, None].float(), (lo, hi, lo, hi))
    return F.max_pool2d(padded, dilation, stride=1)[:, 0]


class BoundaryBCE(BinaryMapLoss):
    """Class-balanced BCE of 1-channel boundary logits [N,1,H,W] against `boundary_targets(label)`.

    Positives are weighted by the batch's share of negatives and negatives by the share of positives, and the
    weighted losses are averaged over every pixel (ignored ones included, as published). PIDNet weights this
    term by 20 (its default auxiliary weight).
    """

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        gt = boundary_targets(target)
        pos_share = gt.sum() / gt.numel()
        weight = torch.where(gt > 0, 1.0 - pos_share, pos_share)
        return F.binary_cross_entropy_with_logits(logits[:, 0], gt, weight)


class BoundaryAwareOhem(nn.Module):
    """OHEM cross-entropy of the main logits on the pixels where sigmoid(boundary logits) > `thresh`.

    The other pixels become the ignore index; the boundary logits only select (no gradient reaches them).
    """

    inputs = ("logits", "binary")

    def __init__(self, ohem: OhemCrossEntropy, thresh: float = 0.8) -> None:
        super().__init__()
        if not 0.0 <= thresh <= 1.0:
            raise ValueError(f"boundary threshold must be in [0, 1], got {thresh}")
        self.ohem = ohem
        self.thresh = float(thresh)

    def extra_repr(self) -> str:
        return f"thresh={self.thresh}"

    def forward(self, logits: torch.Tensor, boundary_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        on_boundary = torch.sigmoid(boundary_logits.detach()[:, 0].float()) > self.thresh
        masked = torch.where(on_boundary, target, torch.full_like(target, self.ohem.ignore_index))
        return self.ohem(logits, masked)
