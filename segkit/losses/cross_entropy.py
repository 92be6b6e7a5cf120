"""Plain cross-entropy with class weights, ignore index and label smoothing (pretraining builds on it too)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .ohem import _raise_bad_labels, class_weight_buffer


class CrossEntropy(nn.Module):
    """Cross-entropy over [N,C] or [N,C,H,W] logits with class weights, ignore_index and label smoothing.

    Computed in float32 under autocast. Averaged as F.cross_entropy's 'mean' (sum of w_y * loss over the
    sum of w_y of the non-ignored targets), except that a batch with no valid target gives 0 with a
    gradient instead of NaN. With smoothing eps the per-sample loss is
    (1 - eps) * -log p_y + eps * mean_c(-log p_c) (class weights applied as torch does).
    """

    def __init__(
        self,
        weight: Sequence[float] | torch.Tensor | None = None,
        ignore_index: int = 255,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", class_weight_buffer(weight), persistent=False)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(
                f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}; "
                "soft [N,C] targets go to segkit.pretrain.losses.SoftTargetCrossEntropy"
            )
        num_classes = logits.shape[1]
        target = target.long()
        valid = target != self.ignore_index
        # A CUDA kernel would only device-assert on a label out of range: check it here, by name.
        if bool((valid & ((target < 0) | (target >= num_classes))).any()):
            _raise_bad_labels(target, self.ignore_index, num_classes)
        w = None if self.weight is None else self.weight.to(logits.device)
        if w is not None and w.numel() != num_classes:
            raise ValueError(f"{w.numel()} class weights for {num_classes} classes")
        with torch.autocast(device_type=logits.device.type, enabled=False):
            loss = F.cross_entropy(
                logits.float(), target, weight=w, ignore_index=self.ignore_index,
                reduction="none", label_smoothing=self.label_smoothing,
            )
        denom = valid.sum() if w is None else (w[target.clamp(0, num_classes - 1)] * valid).sum()
        return loss.sum() / denom.clamp_min(torch.finfo(loss.dtype).tiny)
