"""Warmup followed by poly or cosine decay, stepped once per iteration.

The curve is a pure function of the iteration (`LRCurve`); the scheduler only multiplies it onto
each group's peak LR (base_lr * lr_mult). Pretraining uses the same code with epochs converted to
iterations.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

SCHEDULES = ("poly", "cosine")
WARMUP_METHODS = ("linear", "exp")


@dataclass(frozen=True)
class LRCurve:
    """Multiplier of the base LR at each iteration.

    Warmup over [0, warmup_iters): "linear" from warmup_factor to 1, or "exp" (geometric,
    warmup_factor ** (1 - t / warmup_iters)). Then over the remaining max_iter - warmup_iters
    iterations, with progress p in [0, 1]: "poly" (1 - p) ** power or "cosine" (1 + cos(pi p)) / 2,
    rescaled to end at min_lr_ratio (SOLVER.MIN_LR_FACTOR) instead of 0.
    """

    max_iter: int
    schedule: str = "poly"
    power: float = 0.9
    warmup_iters: int = 0
    warmup_factor: float = 0.1
    warmup_method: str = "linear"
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown LR schedule '{self.schedule}', expected one of {SCHEDULES}")
        if self.warmup_method not in WARMUP_METHODS:
            raise ValueError(f"unknown warmup method '{self.warmup_method}', expected one of {WARMUP_METHODS}")
        if self.max_iter <= 0:
            raise ValueError(f"max_iter must be > 0, got {self.max_iter}")
        if not 0 <= self.warmup_iters <= self.max_iter:
            raise ValueError(f"warmup_iters must be in [0, max_iter={self.max_iter}], got {self.warmup_iters}")
        if self.warmup_iters and not 0.0 < self.warmup_factor <= 1.0:
            raise ValueError(f"warmup_factor must be in (0, 1], got {self.warmup_factor}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")

    def __call__(self, it: int) -> float:
        if it < self.warmup_iters:
            t = it / self.warmup_iters
            if self.warmup_method == "linear":
                return self.warmup_factor + (1.0 - self.warmup_factor) * t
            return self.warmup_factor ** (1.0 - t)
        span = self.max_iter - self.warmup_iters
        p = min(1.0, (it - self.warmup_iters) / span) if span > 0 else 1.0
        if self.schedule == "poly":
            decay = (1.0 - p) ** self.power
        else:
            decay = 0.5 * (1.0 + math.cos(math.pi * p))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * decay


class WarmupLRScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Sets each group's lr to its initial lr (base_lr * lr_mult) times curve(iteration).

    Call step() once per iteration after optimizer.step(). state_dict holds plain numbers only (it
    loads under torch.load(weights_only=True)); on load the current curve is kept, so a resumed run
    may extend MAX_ITER, and the iteration counter comes from the checkpoint.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, curve: LRCurve, last_epoch: int = -1) -> None:
        self.curve = curve
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        f = self.curve(self.last_epoch)
        return [base * f for base in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_epoch": int(self.last_epoch),
            "_step_count": int(self._step_count),
            "base_lrs": [float(b) for b in self.base_lrs],
            "curve": asdict(self.curve),  # informative: what the saved run used
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self.base_lrs = list(state_dict["base_lrs"])
        if len(self.base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(
                f"scheduler state has {len(self.base_lrs)} groups, optimizer has {len(self.optimizer.param_groups)}"
            )
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs
