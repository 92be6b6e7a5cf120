"""Optimisation: parameter groups, optimizers by name, warmup + poly / cosine schedules, EMA."""
from .build import build_lr_scheduler, build_optimizer, peak_lr
from .ema import ModelEma
from .lr_scheduler import LRCurve, WarmupLRScheduler
from .optim import OPTIMIZERS, RMSpropTF, clip_gradients, scale_lr
from .param_groups import get_param_groups, is_norm, model_head_modules

__all__ = [
    "LRCurve",
    "ModelEma",
    "OPTIMIZERS",
    "RMSpropTF",
    "WarmupLRScheduler",
    "build_lr_scheduler",
    "build_optimizer",
    "clip_gradients",
    "get_param_groups",
    "is_norm",
    "model_head_modules",
    "peak_lr",
    "scale_lr",
]
