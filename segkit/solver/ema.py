"""Exponential moving average of a model's weights and buffers (BN running statistics included)."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..utils.comm import unwrap_model


class ModelEma(nn.Module):
    """A frozen copy of `model` that follows it as ema = d * ema + (1 - d) * model after every update().

    Every floating-point entry of the state_dict is averaged (parameters and BN running mean/var);
    integer buffers such as num_batches_tracked are copied. With `warmup`, the decay of the n-th update
    (n counted from 0) is min(decay, (1 + n) / (10 + n)), so the early average is not dominated by the
    random initialisation. `module` is the averaged model, in eval mode, on the model's device.
    state_dict() holds the averaged weights and the update count.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.module = copy.deepcopy(unwrap_model(model)).eval()
        self.module.requires_grad_(False)
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0

    def current_decay(self) -> float:
        """The decay the next update() uses."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        src = unwrap_model(model).state_dict()
        avg_dst, avg_src = [], []
        for key, dst in self.module.state_dict().items():
            if key not in src:
                raise KeyError(f"EMA: the model has no '{key}'; was it built from a different architecture?")
            s = src[key].detach().to(dst.device)
            if dst.is_floating_point():
                avg_dst.append(dst)
                avg_src.append(s.to(dst.dtype))
            else:
                dst.copy_(s)
        if avg_dst:
            # ema + (1 - d) * (model - ema) == d * ema + (1 - d) * model, in one fused pass
            torch._foreach_lerp_(avg_dst, avg_src, 1.0 - d)
        self.num_updates += 1

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> "ModelEma":
        # The average is only ever evaluated: keep BN in eval mode whatever the caller's mode.
        super().train(mode)
        self.module.eval()
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        self.num_updates = int(state_dict.get("num_updates", 0))
        return self.module.load_state_dict(state_dict["module"], strict=strict)
