"""Losses: OHEM / plain cross-entropy for segmentation, the per-head criterion, and the classification
recipe's label smoothing, mixup/CutMix soft targets and distillation."""
from .build import SegCriterion, build_criterion, build_seg_loss
from .cross_entropy import ClassificationLoss, CrossEntropy, SoftTargetCrossEntropy, smooth_one_hot
from .distill import DistillationLoss
from .mix import Mixup
from .ohem import OhemCrossEntropy

__all__ = [
    "ClassificationLoss",
    "CrossEntropy",
    "DistillationLoss",
    "Mixup",
    "OhemCrossEntropy",
    "SegCriterion",
    "SoftTargetCrossEntropy",
    "build_criterion",
    "build_seg_loss",
    "smooth_one_hot",
]
