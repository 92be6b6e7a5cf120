"""Optimizer and LR scheduler of both pipelines (segmentation and pretraining), from the SOLVER section."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from ..utils.comm import unwrap_model
from .lr_scheduler import LRCurve, WarmupLRScheduler
from .optim import OPTIMIZERS, scale_lr
from .param_groups import get_param_groups, model_head_modules


def peak_lr(cfg: CfgNode) -> float:
    """The LR of the base groups after warmup: SOLVER.BASE_LR, linearly scaled to SOLVER.IMS_PER_BATCH when
    SOLVER.LR_REFERENCE_BATCH > 0."""
    s = cfg.SOLVER
    if s.BASE_LR <= 0:
        raise ValueError(f"SOLVER.BASE_LR must be > 0, got {s.BASE_LR}")
    if s.LR_REFERENCE_BATCH < 0:
        raise ValueError(f"SOLVER.LR_REFERENCE_BATCH must be >= 0 (0: no scaling), got {s.LR_REFERENCE_BATCH}")
    return scale_lr(s.BASE_LR, s.IMS_PER_BATCH, s.LR_REFERENCE_BATCH) if s.LR_REFERENCE_BATCH else s.BASE_LR


def build_optimizer(cfg: CfgNode, model: nn.Module, extra_modules: Sequence[nn.Module] = ()) -> torch.optim.Optimizer:
    """SOLVER.OPTIMIZER over parameter groups: WEIGHT_DECAY on weights, WEIGHT_DECAY_NORM / _BIAS on norms
    and biases, HEAD_LR_MULT x the peak LR on model.head_modules(); each group keeps its "lr_mult".

    `extra_modules` are trained beside the model and optimised like its heads: new layers a loss owns, such
    as the projection of a distilled feature (segkit.losses.distill.DistillCriterion)."""
    s = cfg.SOLVER
    if s.OPTIMIZER not in OPTIMIZERS:
        raise ValueError(f"unknown SOLVER.OPTIMIZER '{s.OPTIMIZER}', expected one of {sorted(OPTIMIZERS)}")
    lr = peak_lr(cfg)
    extra = list(extra_modules)
    groups = get_param_groups(
        nn.ModuleList([unwrap_model(model), *extra]) if extra else model, s.WEIGHT_DECAY,
        weight_decay_norm=s.WEIGHT_DECAY_NORM, weight_decay_bias=s.WEIGHT_DECAY_BIAS,
        head_modules=model_head_modules(model) + extra, head_lr_mult=s.HEAD_LR_MULT,
    )
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameter to optimise")
    for g in groups:
        g["lr"] = lr * g["lr_mult"]
    return OPTIMIZERS[s.OPTIMIZER](groups, lr, s)


def build_lr_scheduler(
    cfg: CfgNode, optimizer: torch.optim.Optimizer, max_iter: int, warmup_iters: int
) -> WarmupLRScheduler:
    """SOLVER.WARMUP_* warmup over `warmup_iters`, then SOLVER.LR_SCHEDULER ("poly" with POLY_POWER, or
    "cosine") down to MIN_LR_FACTOR of each group's peak LR at `max_iter`; step once per iteration.

    The lengths come from the caller because each pipeline counts them its own way (iterations, epochs).
    """
    s = cfg.SOLVER
    try:
        curve = LRCurve(
            max_iter=max_iter, schedule=s.LR_SCHEDULER, power=s.POLY_POWER, warmup_iters=warmup_iters,
            warmup_factor=s.WARMUP_FACTOR, warmup_method=s.WARMUP_METHOD, min_lr_ratio=s.MIN_LR_FACTOR,
        )
    except ValueError as e:
        raise ValueError(f"SOLVER config: {e} (keys SOLVER.LR_SCHEDULER, WARMUP_*, MIN_LR_FACTOR and the length)") from e
    return WarmupLRScheduler(optimizer, curve)
