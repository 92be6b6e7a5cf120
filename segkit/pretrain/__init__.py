"""Classification pretraining of the zoo backbones (ImageNet): data, transforms, mixup/CutMix and distillation
losses, the trainer, evaluation and the backbone export that segmentation configs load.

It shares models, solver (the one SOLVER schema) and utils with segmentation; nothing below it imports it.
"""
from .data import ImageFolder, UnreadableImageError, build_cls_dataset, build_cls_train_loader, build_cls_val_loader
from .demo import ensure_demo_cls_dataset, make_demo_cls_dataset
from .evaluate import evaluate_classifier, evaluate_weights, topk_correct
from .backbone_weights import CHECKPOINT_KIND, classifier_backbone_state, export_backbone
from .losses import ClassificationLoss, DistillationLoss, SoftTargetCrossEntropy, smooth_one_hot
from .mix import Mixup
from .trainer import ClsTrainer
from .transforms import build_cls_transforms

__all__ = [
    "CHECKPOINT_KIND", "ClassificationLoss", "ClsTrainer", "DistillationLoss", "ImageFolder", "Mixup",
    "SoftTargetCrossEntropy", "UnreadableImageError", "build_cls_dataset", "build_cls_train_loader",
    "build_cls_transforms", "build_cls_val_loader", "classifier_backbone_state", "ensure_demo_cls_dataset",
    "evaluate_classifier", "evaluate_weights", "export_backbone", "make_demo_cls_dataset", "smooth_one_hot",
    "topk_correct",
]
