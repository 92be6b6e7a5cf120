"""Semi-supervised training: a teacher's confident predictions on unlabelled images supervise the student.

FixMatch / UniMatch style, per iteration on a batch of unlabelled images (segkit.data.unlabeled: a weak view
and a pixel-aligned strong view of each crop):
1. the teacher labels the weak views: pseudo-label = argmax, confidence = max softmax probability;
2. CutMix: with probability SEMI.CUTMIX_PROB an image receives a box (UniMatch's: 2-40% of the area, aspect
   ratio in [0.3, 1/0.3]) from another image of the batch; the same box moves the strong view, the
   pseudo-label, the confidence and the valid (not padding) mask, so they stay aligned;
3. the student predicts the mixed strong views; cross-entropy against the pseudo-labels where the confidence
   reaches SEMI.THRESHOLD, averaged over the valid pixels (UniMatch's normalisation), weighted by
   SEMI.LOSS_WEIGHT. With SEMI.CLASS_KEEP < 1, a pixel also has to be among the most confident SEMI.CLASS_KEEP
   share of the batch's pixels its teacher assigns to the same class (CBST's class-balanced selection, Zou et
   al. ECCV 2018): every class keeps the same share of its pseudo-labels, so a global cut does not starve the
   classes the teacher is least sure of, and each class sheds its own least confident pixels.
The teacher is the student's exponential moving average (SEMI.TEACHER "ema": the mean teacher, updated after
every optimiser step, its state checkpointed) or a fixed model (SEMI.TEACHER "fixed": TEACHER.CONFIG/WEIGHTS).
Logged: the share of valid pixels that count, and every SEMI.ACCURACY_PERIOD iterations the teacher's
pixel accuracy on the labelled batch (how right the pseudo-labels would be; optimistic for a fixed teacher,
which trained on those labels: OUTPUT_DIR/train_unlabelled.txt scores it on the unlabelled images themselves).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode

from ..config import ConfigError
from ..solver.ema import ModelEma
from .teacher import FrozenTeacher, build_teacher

# UniMatch's CutMix box: area share and aspect-ratio range.
BOX_AREA, BOX_RATIO = (0.02, 0.4), (0.3, 1 / 0.3)


class PseudoTargets(NamedTuple):
    """The strong views to show the student and what they are taught with, all [N,...] aligned."""

    images: torch.Tensor  # [N,3,H,W] strong views after CutMix
    labels: torch.Tensor  # [N,H,W] pseudo-labels (long)
    confident: torch.Tensor  # [N,H,W] bool: confidence >= threshold and valid
    valid: torch.Tensor  # [N,H,W] bool: not padding
    share: torch.Tensor  # scalar: confident share of the valid pixels (before mixing)


def cutmix_boxes(n: int, height: int, width: int, prob: float, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """[N,H,W] bool masks: a random box (UniMatch's area and ratio ranges) with probability `prob`, else empty.
    Drawn from torch's generator (`generator` or the global one, which the trainer seeds per iteration)."""
    masks = torch.zeros(n, height, width, dtype=torch.bool)
    u = torch.rand(n, 5, generator=generator).tolist()
    for i, (p, a, r, y, x) in enumerate(u):
        if p >= prob:
            continue
        area = (BOX_AREA[0] + a * (BOX_AREA[1] - BOX_AREA[0])) * height * width
        ratio = BOX_RATIO[0] + r * (BOX_RATIO[1] - BOX_RATIO[0])
        bw = min(width, max(1, int(round(math.sqrt(area / ratio)))))
        bh = min(height, max(1, int(round(math.sqrt(area * ratio)))))
        top, left = int(y * (height - bh + 1)), int(x * (width - bw + 1))
        masks[i, top:top + bh, left:left + bw] = True
    return masks.to(device)


def mix(tensor: torch.Tensor, boxes: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """Inside each image's box, the values of its partner image; [N,H,W] or [N,C,H,W]."""
    box = boxes if tensor.dim() == 3 else boxes[:, None]
    return torch.where(box, tensor[partner], tensor)


def class_balanced(labels: torch.Tensor, conf: torch.Tensor, candidates: torch.Tensor, keep: float) -> torch.Tensor:
    """Of the `candidates` pixels, per pseudo-label class the ceil(keep x count) most confident (ties at the cut
    kept too); bool, shaped like `labels`. Per batch and per process: CBST ranks a whole target set, a stream
    of crops only has the batch."""
    if keep >= 1.0:
        return candidates
    kept = torch.zeros_like(candidates)
    for c in labels[candidates].unique():
        member = candidates & (labels == c)
        scores = conf[member]
        cut = scores.kthvalue(scores.numel() - math.ceil(keep * scores.numel()) + 1).values
        kept |= member & (conf >= cut)
    return kept


def pseudo_labels(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(argmax [N,H,W], max softmax probability [N,H,W]) in float32."""
    conf, labels = F.softmax(logits.detach().float(), dim=1).max(dim=1)
    return labels, conf


class SemiSupervision:
    """The unsupervised half of a semi-supervised run (see the module docstring).

    `prepare(unlabelled batch)` -> PseudoTargets; the trainer runs the student on `targets.images` (alone or
    concatenated with the labelled batch), then `loss(student logits, targets)` -> (weighted total, parts).
    The mean teacher is `ema` (SEMI.TEACHER "ema"): SegTrainer adopts it as the trainer's EMA, so the base
    trainer updates it after every optimiser step and checkpoints it under "ema".
    """

    def __init__(self, cfg: CfgNode, student: nn.Module, device: torch.device | str = "cpu",
                 teacher: FrozenTeacher | None = None) -> None:
        s = cfg.SEMI
        if not 0.0 <= s.THRESHOLD <= 1.0:
            raise ConfigError(f"SEMI.THRESHOLD must be in [0, 1], got {s.THRESHOLD}")
        if not 0.0 <= s.CUTMIX_PROB <= 1.0:
            raise ConfigError(f"SEMI.CUTMIX_PROB must be in [0, 1], got {s.CUTMIX_PROB}")
        if not 0.0 < s.CLASS_KEEP <= 1.0:
            raise ConfigError(f"SEMI.CLASS_KEEP must be in (0, 1], got {s.CLASS_KEEP}")
        if s.LOSS_WEIGHT < 0:
            raise ConfigError(f"SEMI.LOSS_WEIGHT must be >= 0, got {s.LOSS_WEIGHT}")
        self.threshold, self.cutmix_prob, self.weight = float(s.THRESHOLD), float(s.CUTMIX_PROB), float(s.LOSS_WEIGHT)
        self.class_keep = float(s.CLASS_KEEP)
        self.accuracy_period = int(s.ACCURACY_PERIOD)
        self.device = device
        self.ignore_index = int(cfg.DATASET.IGNORE_INDEX)
        self.ema: ModelEma | None = None
        if s.TEACHER == "ema":
            try:
                self.ema = ModelEma(student, decay=s.EMA_DECAY, warmup=True)
            except ValueError as e:
                raise ConfigError(f"SEMI.EMA_DECAY: {e}") from e
            self._teach: Callable[[torch.Tensor], torch.Tensor] = self.ema.module
        elif s.TEACHER == "fixed":
            teacher = teacher or build_teacher(cfg, device)
            if teacher is None:
                raise ConfigError("SEMI.TEACHER 'fixed' needs TEACHER.CONFIG and TEACHER.WEIGHTS")
            self._teach = lambda images: teacher(images).logits
        else:
            raise ConfigError(f"SEMI.TEACHER must be 'ema' or 'fixed', got '{s.TEACHER}'")

    def teach(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's logits, without a gradient."""
        with torch.no_grad():
            out = self._teach(images)
        return out[0] if isinstance(out, (tuple, list)) else out

    def select(self, labels: torch.Tensor, conf: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """The pseudo-labels that count: above SEMI.THRESHOLD, then class-balanced by SEMI.CLASS_KEEP."""
        return class_balanced(labels, conf, (conf >= self.threshold) & candidates, self.class_keep)

    def prepare(self, batch: dict[str, Any]) -> PseudoTargets:
        """Pseudo-label the weak views of an unlabelled batch and CutMix the strong views with them."""
        weak = batch["image"].to(self.device, non_blocking=True)
        strong = batch["image_strong"].to(self.device, non_blocking=True)
        valid = batch["valid"].to(self.device, non_blocking=True)
        labels, conf = pseudo_labels(self.teach(weak))
        confident = self.select(labels, conf, valid)
        share = confident.sum() / valid.sum().clamp_min(1)
        n, _, h, w = strong.shape
        boxes = cutmix_boxes(n, h, w, self.cutmix_prob, strong.device)
        partner = torch.roll(torch.arange(n, device=strong.device), 1)  # each image takes its box from the previous
        return PseudoTargets(mix(strong, boxes, partner), mix(labels, boxes, partner),
                             mix(confident, boxes, partner), mix(valid, boxes, partner), share.detach())

    def loss(self, outputs: Any, targets: PseudoTargets) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(SEMI.LOSS_WEIGHT x unsupervised loss, {"loss_unsup": the loss before its weight, detached}); the
        confident share to log is `targets.share`."""
        logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
        if logits.shape[-2:] != targets.labels.shape[-2:]:
            raise ValueError(f"student logits {tuple(logits.shape)} do not match the pseudo-labels "
                             f"{tuple(targets.labels.shape)}")
        with torch.autocast(device_type=logits.device.type, enabled=False):
            ce = F.cross_entropy(logits.float(), targets.labels, reduction="none")
        keep = targets.confident.to(ce.dtype)
        loss = (ce * keep).sum() / targets.valid.sum().clamp_min(1)
        return self.weight * loss, {"loss_unsup": loss.detach()}

    def pseudo_label_accuracy(self, images: torch.Tensor, labels: torch.Tensor,
                              iteration: int) -> dict[str, torch.Tensor]:
        """Every SEMI.ACCURACY_PERIOD iterations (else {}): the teacher's pixel accuracy on a labelled batch,
        over all labelled pixels ("pseudo_acc") and over those that would count (`select`: "pseudo_acc_confident",
        left out when there are none)."""
        if self.accuracy_period <= 0 or (iteration + 1) % self.accuracy_period:
            return {}
        pred, conf = pseudo_labels(self.teach(images))
        labelled = labels != self.ignore_index
        right = (pred == labels) & labelled
        confident = self.select(pred, conf, labelled)
        out = {"pseudo_acc": right.sum() / labelled.sum().clamp_min(1)}
        if confident.any():  # no confident pixel: no accuracy to report (0 would read as "all wrong")
            out["pseudo_acc_confident"] = (right & confident).sum() / confident.sum()
        return out
