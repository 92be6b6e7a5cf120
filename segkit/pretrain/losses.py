"""Classification losses of pretraining: label-smoothed and soft-target cross-entropy (mixup, CutMix), and
knowledge distillation from a teacher's logits with a temperature ("label refinery")."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..losses.cross_entropy import CrossEntropy

def smooth_one_hot(target: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Float32 [N, num_classes] targets: 1 - eps + eps/K on the true class, eps/K elsewhere."""
    if target.dim() != 1:
        raise ValueError(f"class targets must be [N], got shape {tuple(target.shape)}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"class targets must lie in [0, {num_classes}), got {target.min()}..{target.max()}")
    off = smoothing / num_classes
    out = torch.full((target.numel(), num_classes), off, dtype=torch.float32, device=target.device)
    return out.scatter_(1, target.long().unsqueeze(1), 1.0 - smoothing + off)


class SoftTargetCrossEntropy(nn.Module):
    """mean_n sum_c -q_nc log softmax(z_n)_c for soft targets q [N,C] (mixup, CutMix, teacher probabilities)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape != logits.shape:
            raise ValueError(f"soft targets {tuple(target.shape)} must match logits {tuple(logits.shape)}")
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logp = F.log_softmax(logits.float(), dim=1)
            return -(target.float() * logp).sum(dim=1).mean()


class ClassificationLoss(nn.Module):
    """Hard labels [N] -> label-smoothed CE; soft targets [N,C] (after mixup) -> soft-target CE."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.hard = CrossEntropy(ignore_index=-100, label_smoothing=label_smoothing)
        self.soft = SoftTargetCrossEntropy()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.soft(logits, target) if target.dim() == logits.dim() else self.hard(logits, target)


DISTILL_KINDS = ("kl", "ce")


def distillation_term(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0, kind: str = "kl"
) -> torch.Tensor:
    """T^2 * KL(p_t || p_s) ("kl") or T^2 * CE(p_t, p_s) ("ce") with p = softmax(logits / T), batch mean.

    The two differ by the teacher's entropy, a constant: same gradient, but "kl" reaches 0 when the
    student matches the teacher. T^2 keeps the gradient scale independent of T (Hinton et al.).
    """
    if kind not in DISTILL_KINDS:
        raise ValueError(f"unknown distillation kind '{kind}', expected one of {DISTILL_KINDS}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} differ")
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        log_ps = F.log_softmax(student_logits.float() / temperature, dim=1)
        log_pt = F.log_softmax(teacher_logits.detach().float() / temperature, dim=1)
        if kind == "kl":
            per_sample = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1)
        else:
            per_sample = -(log_pt.exp() * log_ps).sum(dim=1)
        return per_sample.mean() * temperature**2


class DistillationLoss(nn.Module):
    """(1 - alpha) * base(student, target) + alpha * distillation_term(student, teacher).

    alpha = 1 with kind "ce" and T = 1 is the label refinery: train on the teacher's probabilities
    only. The teacher's logits are detached; it should see the same (mixed) images as the student.
    """

    def __init__(self, base: nn.Module, alpha: float = 0.5, temperature: float = 1.0, kind: str = "kl") -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distillation alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"distillation temperature must be > 0, got {temperature}")
        if kind not in DISTILL_KINDS:
            raise ValueError(f"unknown distillation kind '{kind}', expected one of {DISTILL_KINDS}")
        self.base = base
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.kind = kind

    def forward(self, student_logits: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        soft = distillation_term(student_logits, teacher_logits, self.temperature, self.kind)
        if self.alpha == 1.0:
            return soft
        return (1.0 - self.alpha) * self.base(student_logits, target) + self.alpha * soft
