"""Segmentation losses: OHEM / plain cross-entropy and the per-head criterion (pretraining's classification
losses are in segkit.pretrain.losses)."""
from .build import LOSSES, SegCriterion, build_criterion, build_seg_loss
from .cross_entropy import CrossEntropy
from .ohem import OhemCrossEntropy

__all__ = [
    "LOSSES",
    "CrossEntropy",
    "OhemCrossEntropy",
    "SegCriterion",
    "build_criterion",
    "build_seg_loss",
]
