"""Online hard example mining cross-entropy for segmentation (the BiSeNet / Cityscapes recipe)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def class_weight_buffer(weight: Sequence[float] | torch.Tensor | None) -> torch.Tensor | None:
    """Per-class CE weights as a float32 1-D tensor, or None; refuses negative or non-finite values."""
    if weight is None:
        return None
    w = torch.as_tensor(weight, dtype=torch.float32).flatten()
    if w.numel() == 0:
        return None
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"class weights must be finite and >= 0, got {w.tolist()}")
    return w


def pixel_nll(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, weight: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unweighted per-pixel NLL in float32, plus each pixel's class weight and the valid mask.

    Returns (nll, pixel_weight, valid, n_bad): flat tensors over N*H*W; n_bad counts valid pixels whose
    label is outside [0, C), which the caller turns into an error (CUDA would only device-assert).
    """
    if logits.dim() < 2:
        raise ValueError(f"logits must be [N,C,...], got shape {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}: expected "
            f"{tuple(logits.shape[:1] + logits.shape[2:])}; resize the logits to the label size first "
            "(segkit.models.segmentors.base.resize_logits)"
        )
    num_classes = logits.shape[1]
    target = target.long()
    valid = target != ignore_index
    in_range = (target >= 0) & (target < num_classes)
    n_bad = (valid & ~in_range).sum()
    valid = valid & in_range
    safe = torch.where(valid, target, torch.full_like(target, ignore_index))
    # fp16 log-softmax loses the small probabilities that OHEM ranks by: always float32.
    with torch.autocast(device_type=logits.device.type, enabled=False):
        nll = F.cross_entropy(logits.float(), safe, ignore_index=ignore_index, reduction="none").flatten()
    valid = valid.flatten()
    if weight is None:
        pw = valid.to(nll.dtype)
    else:
        w = weight.to(device=nll.device, dtype=nll.dtype)
        if w.numel() != num_classes:
            raise ValueError(f"{w.numel()} class weights for {num_classes} classes")
        pw = w[safe.flatten().clamp(0, num_classes - 1)] * valid
    return nll, pw, valid, n_bad


def weighted_mean(nll: torch.Tensor, pixel_weight: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """sum(w * l) / sum(w) over kept pixels, as F.cross_entropy's 'mean'; 0 (with a gradient) when nothing is kept."""
    w = pixel_weight if keep is None else pixel_weight * keep
    # nll is 0 at ignored pixels, so an empty or zero-weight selection yields 0 / tiny = 0, never NaN.
    return (nll * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)


def _raise_bad_labels(target: torch.Tensor, ignore_index: int, num_classes: int) -> None:
    t = target[(target != ignore_index) & ((target < 0) | (target >= num_classes))]
    raise ValueError(
        f"labels {sorted(set(t.unique().tolist()))[:10]} are outside [0, {num_classes}) and are not the "
        f"ignore index {ignore_index}"
    )


class OhemCrossEntropy(nn.Module):
    """Cross-entropy averaged over the hard pixels only.

    A pixel is hard when its true-class probability is below `thresh`. All hard pixels are kept, but
    never fewer than n_min = max(floor(min_kept_ratio * valid pixels), min(min_kept, valid pixels)): when
    too few are hard, exactly the n_min pixels with the largest loss are kept instead (ties at the cut are
    broken by position, so the count is exact). `min_kept` is the absolute count of the HRNet-based recipes (PIDNet,
    DDRNet: 131072 per process); BiSeNet's and STDC's use the ratio (1/16). The result
    is the (class-weighted) mean over the kept pixels; with no valid or no kept pixel it is 0 with a
    gradient. Selection uses the unweighted probability, so class weights change the average only.
    """

    def __init__(
        self,
        thresh: float = 0.7,
        min_kept_ratio: float = 1 / 16,
        ignore_index: int = 255,
        weight: Sequence[float] | torch.Tensor | None = None,
        min_kept: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 < thresh <= 1.0:
            raise ValueError(f"OHEM thresh must be in (0, 1], got {thresh}")
        if not 0.0 <= min_kept_ratio <= 1.0:
            raise ValueError(f"OHEM min_kept_ratio must be in [0, 1], got {min_kept_ratio}")
        if min_kept < 0:
            raise ValueError(f"OHEM min_kept must be >= 0, got {min_kept}")
        self.thresh = float(thresh)
        self.min_kept_ratio = float(min_kept_ratio)
        self.min_kept = int(min_kept)
        self.ignore_index = int(ignore_index)
        # p < thresh  <=>  -log p > -log thresh: compare losses, no softmax needed.
        self.loss_thresh = -math.log(self.thresh)
        self.register_buffer("weight", class_weight_buffer(weight), persistent=False)

    def extra_repr(self) -> str:
        return (f"thresh={self.thresh}, min_kept_ratio={self.min_kept_ratio}, min_kept={self.min_kept}, "
                f"ignore_index={self.ignore_index}")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        nll, pw, valid, n_bad = pixel_nll(logits, target, self.ignore_index, self.weight)
        hard = valid & (nll > self.loss_thresh)
        # The only host sync: the counts decide the branch and the size of the top-k.
        n_valid, n_hard, bad = torch.stack([valid.sum(), hard.sum(), n_bad]).tolist()
        if bad:
            _raise_bad_labels(target, self.ignore_index, logits.shape[1])
        n_min = max(int(self.min_kept_ratio * n_valid), min(self.min_kept, n_valid))
        if n_valid == 0 or (n_hard == 0 and n_min == 0):
            return nll.sum() * 0.0
        if n_hard >= n_min:
            keep = hard
        else:
            # Exactly the n_min largest losses, by index: a threshold on the n_min-th value would keep every
            # pixel tied with it, and very confident pixels round to the same float32 loss, so ties can be
            # most of the image. Ignored pixels rank below any valid one.
            ranked = nll.detach().masked_fill(~valid, -1.0).flatten()
            keep = torch.zeros_like(ranked, dtype=torch.bool)
            keep[torch.topk(ranked, n_min, sorted=False).indices] = True
            keep = keep.view_as(valid)
        return weighted_mean(nll, pw, keep)
