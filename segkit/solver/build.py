"""Optimizer and LR scheduler of segmentation training, from the SOLVER section of the config."""
from __future__ import annotations

import torch
from torch import nn
from yacs.config import CfgNode

from .lr_scheduler import WarmupLRScheduler, create_lr_scheduler
from .optim import create_optimizer
from .param_groups import get_param_groups, model_head_modules


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """SGD over parameter groups: SOLVER.WEIGHT_DECAY on weights, WEIGHT_DECAY_NORM / _BIAS on norms and
    biases, SOLVER.HEAD_LR_MULT x BASE_LR on model.head_modules(); each group keeps its "lr_mult"."""
    s = cfg.SOLVER
    if s.BASE_LR <= 0:
        raise ValueError(f"SOLVER.BASE_LR must be > 0, got {s.BASE_LR}")
    groups = get_param_groups(
        model, s.WEIGHT_DECAY, weight_decay_norm=s.WEIGHT_DECAY_NORM, weight_decay_bias=s.WEIGHT_DECAY_BIAS,
        head_modules=model_head_modules(model), head_lr_mult=s.HEAD_LR_MULT,
    )
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameter to optimise")
    return create_optimizer("sgd", groups, s.BASE_LR, weight_decay=s.WEIGHT_DECAY, momentum=s.MOMENTUM,
                            nesterov=s.NESTEROV)


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer) -> WarmupLRScheduler:
    """SOLVER.WARMUP_* warmup then SOLVER.LR_SCHEDULER ("poly" with POLY_POWER, or "cosine") to MIN_LR at
    MAX_ITER; step once per iteration."""
    s = cfg.SOLVER
    try:
        return create_lr_scheduler(
            optimizer, s.MAX_ITER, schedule=s.LR_SCHEDULER, power=s.POLY_POWER, warmup_iters=s.WARMUP_ITERS,
            warmup_factor=s.WARMUP_FACTOR, warmup_method=s.WARMUP_METHOD, min_lr=s.MIN_LR, base_lr=s.BASE_LR,
        )
    except ValueError as e:
        raise ValueError(f"SOLVER config: {e} (keys SOLVER.MAX_ITER, LR_SCHEDULER, WARMUP_*, MIN_LR)") from e
