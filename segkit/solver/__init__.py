"""Optimisation: parameter groups, SGD / RMSpropTF / AdamW, warmup + poly / cosine schedules, EMA."""
from .build import build_lr_scheduler, build_optimizer
from .ema import ModelEma
from .lr_scheduler import LRCurve, WarmupLRScheduler, create_lr_scheduler, lr_factor
from .optim import RMSpropTF, clip_gradients, create_optimizer, scale_lr
from .param_groups import get_param_groups, is_norm, model_head_modules, unwrap_model

__all__ = [
    "LRCurve",
    "ModelEma",
    "RMSpropTF",
    "WarmupLRScheduler",
    "build_lr_scheduler",
    "build_optimizer",
    "clip_gradients",
    "create_lr_scheduler",
    "create_optimizer",
    "get_param_groups",
    "is_norm",
    "lr_factor",
    "model_head_modules",
    "scale_lr",
    "unwrap_model",
]
