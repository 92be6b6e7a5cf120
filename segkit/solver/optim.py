"""Optimizers by name (SGD, TensorFlow-style RMSprop, AdamW), linear LR scaling and gradient clipping."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch.optim import Optimizer
from yacs.config import CfgNode


class RMSpropTF(Optimizer):
    """RMSprop as TensorFlow 1's tf.train.RMSPropOptimizer computes it (the EfficientNet recipe).

    Per step, with g the gradient plus weight_decay * p (TF adds the L2 term to the loss):
        ms  = alpha * ms + (1 - alpha) * g^2
        mom = momentum * mom + lr * g / sqrt(ms + eps)       (centered: ms - mg^2 inside the root)
        p   = p - mom
    Differences from torch.optim.RMSprop, which is what makes TF recipes transfer: epsilon sits inside
    the square root (torch adds it outside), the learning rate is folded into the momentum buffer, and
    ms starts at `init_square_avg` = 1.0, as TF1's optimizer initialises its "rms" slot with ones
    (Keras' TF2 RMSprop starts at 0). Starting at 1 keeps the first steps near lr * g; starting at 0,
    the first step is lr * g / sqrt((1 - alpha) g^2 + eps), up to 1 / sqrt(eps) ~ 30x larger for the
    small gradients of a fresh network.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.01,
        alpha: float = 0.9,
        eps: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        centered: bool = False,
        init_square_avg: float = 1.0,
    ) -> None:
        if lr < 0 or eps <= 0 or not 0.0 <= alpha < 1.0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"invalid RMSpropTF settings lr={lr} alpha={alpha} eps={eps} momentum={momentum} wd={weight_decay}"
            )
        defaults = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay,
                        centered=centered, init_square_avg=init_square_avg)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's Optimizer.step signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, eps, mom = group["lr"], group["alpha"], group["eps"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("RMSpropTF does not support sparse gradients")
                g = p.grad
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = torch.full_like(p, group["init_square_avg"])
                    if mom > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(p)
                state["step"] += 1
                sq = state["square_avg"]
                sq.mul_(alpha).addcmul_(g, g, value=1.0 - alpha)
                if group["centered"]:
                    ga = state["grad_avg"]
                    ga.mul_(alpha).add_(g, alpha=1.0 - alpha)
                    denom = sq.addcmul(ga, ga, value=-1.0).add_(eps).sqrt_()
                else:
                    denom = sq.add(eps).sqrt_()
                if mom > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(mom).addcdiv_(g, denom, value=lr)
                    p.sub_(buf)
                else:
                    p.addcdiv_(g, denom, value=-lr)
        return loss


def _sgd(groups: list[dict], lr: float, s: CfgNode) -> Optimizer:
    if s.NESTEROV and s.MOMENTUM <= 0:
        raise ValueError("SOLVER.NESTEROV needs SOLVER.MOMENTUM > 0")
    return torch.optim.SGD(groups, lr=lr, momentum=s.MOMENTUM, nesterov=s.NESTEROV, weight_decay=s.WEIGHT_DECAY)


def _rmsproptf(groups: list[dict], lr: float, s: CfgNode) -> Optimizer:
    return RMSpropTF(groups, lr=lr, alpha=s.RMSPROP_ALPHA, eps=s.RMSPROP_EPS, momentum=s.MOMENTUM,
                     weight_decay=s.WEIGHT_DECAY)


def _adamw(groups: list[dict], lr: float, s: CfgNode) -> Optimizer:
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(s.BETAS), eps=s.EPS, weight_decay=s.WEIGHT_DECAY)


# SOLVER.OPTIMIZER -> factory(param groups, base LR, the SOLVER config node). The groups arrive with their
# own "lr" and "weight_decay"; a factory reads its other hyperparameters from SOLVER keys
# (segkit/config/solver.py). A new optimizer is one factory here, plus its keys there.
OPTIMIZERS: dict[str, Callable[[list[dict], float, CfgNode], Optimizer]] = {
    "sgd": _sgd,
    "rmsproptf": _rmsproptf,
    "adamw": _adamw,
}


def scale_lr(lr: float, global_batch: int, reference_batch: int = 256) -> float:
    """Linear scaling rule: the LR for `global_batch` images when `lr` is right for `reference_batch`."""
    if global_batch <= 0 or reference_batch <= 0:
        raise ValueError(f"global and reference batch must be > 0, got {global_batch} and {reference_batch}")
    return lr * global_batch / reference_batch


def clip_gradients(
    parameters: Iterable[torch.Tensor] | torch.nn.Module,
    max_norm: float,
    norm_type: float = 2.0,
    scaler: "torch.amp.GradScaler | None" = None,
    optimizer: Optimizer | None = None,
) -> torch.Tensor | None:
    """Clip the global gradient norm to `max_norm` (<= 0: off, returns None); returns the norm before clipping.

    Under AMP pass the GradScaler and optimizer: the gradients are unscaled first, and scaler.step()
    then knows not to unscale them again. Non-finite norms are left to the scaler to skip the step.
    """
    if max_norm <= 0:
        return None
    if scaler is not None:
        if optimizer is None:
            raise ValueError("clip_gradients with a GradScaler needs the optimizer to unscale")
        scaler.unscale_(optimizer)
    if isinstance(parameters, torch.nn.Module):
        parameters = parameters.parameters()
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=norm_type)
