"""Mixup and CutMix on a batch, with the matching label-smoothed soft targets."""
from __future__ import annotations

import math
import random

import torch

from .losses import smooth_one_hot


def cutmix_box(lam: float, height: int, width: int, rng: random.Random) -> tuple[int, int, int, int]:
    """A box of area ~ (1 - lam) * H * W centred uniformly on the image, clipped to it: (y0, y1, x0, x1)."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = rng.randrange(height), rng.randrange(width)
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return y0, y1, x0, x1


class Mixup:
    """Mixes each batch with its reverse (sample i with sample N-1-i), one lambda per batch.

    With probability `prob` a batch is mixed: by CutMix with probability `switch_prob` when both alphas
    are > 0 (only the method whose alpha is > 0 otherwise), lambda ~ Beta(alpha, alpha). Mixup blends the
    images; CutMix pastes a box of the partner image, and lambda is then recomputed from the clipped box
    as the share of pixels kept. Targets are label-smoothed one-hots mixed with the same lambda, so every
    row sums to 1. Call as `images, soft_targets = mixup(images, labels)` with labels [N] int.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"mixup/cutmix alphas must be >= 0, got {mixup_alpha}, {cutmix_alpha}")
        if not (0.0 <= prob <= 1.0 and 0.0 <= switch_prob <= 1.0 and 0.0 <= label_smoothing < 1.0):
            raise ValueError(f"prob {prob} / switch_prob {switch_prob} / label_smoothing {label_smoothing} out of range")
        self.num_classes = num_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.prob = prob
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing
        # Python's `random` is seeded by segkit.utils.seed.seed_everything and has betavariate.
        self.rng = rng or random.Random(random.getrandbits(64))

    @property
    def enabled(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def sample(self) -> tuple[float, bool]:
        """(lambda, use_cutmix) for the next batch; lambda 1 means no mixing."""
        if not self.enabled or self.rng.random() >= self.prob:
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            cutmix = self.rng.random() < self.switch_prob
        else:
            cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if cutmix else self.mixup_alpha
        return float(self.rng.betavariate(alpha, alpha)), cutmix

    def __call__(self, images: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dim() != 4 or target.shape != images.shape[:1]:
            raise ValueError(f"Mixup expects images [N,C,H,W] and labels [N], got {tuple(images.shape)}, "
                             f"{tuple(target.shape)}")
        lam, cutmix = self.sample()
        images, lam = self.apply(images, lam, cutmix)
        soft = smooth_one_hot(target, self.num_classes, self.label_smoothing)
        if lam < 1.0:
            soft = soft.mul(lam).add_(soft.flip(0), alpha=1.0 - lam)
        return images, soft

    def apply(self, images: torch.Tensor, lam: float, cutmix: bool) -> tuple[torch.Tensor, float]:
        """Mix `images` with their reverse at `lam`; returns the images and the lambda actually realised."""
        if lam >= 1.0:
            return images, 1.0
        partner = images.flip(0)
        if not cutmix:
            return images.mul(lam).add_(partner, alpha=1.0 - lam), lam
        h, w = images.shape[-2:]
        y0, y1, x0, x1 = cutmix_box(lam, h, w, self.rng)
        out = images.clone()
        out[:, :, y0:y1, x0:x1] = partner[:, :, y0:y1, x0:x1]
        return out, 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
