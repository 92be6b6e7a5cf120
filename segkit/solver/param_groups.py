"""Optimizer parameter groups: weight decay off for norms and biases, an LR multiplier for head modules."""
from __future__ import annotations

from typing import Iterable

from torch import nn

from ..utils.comm import unwrap_model

# Norm layers by type; a module whose class name contains "Norm" (a custom LayerNorm2d, RMSNorm, ...)
# counts as well, so families added later need no change here.
_NORM_TYPES: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORM_TYPES) or "Norm" in type(module).__name__


def get_param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    weight_decay_norm: float = 0.0,
    weight_decay_bias: float = 0.0,
    head_modules: Iterable[nn.Module | None] = (),
    head_lr_mult: float = 1.0,
) -> list[dict]:
    """Split the trainable parameters of `model` into optimizer groups.

    Each group carries "params", "lr_mult" (head_lr_mult for parameters inside `head_modules`, else
    1) and "weight_decay": weight_decay_norm for norm-layer parameters, weight_decay_bias for biases,
    weight_decay otherwise. Every trainable parameter lands in exactly one group, even when it
    is shared or sits in two head modules; frozen parameters and empty groups are left out. The order is
    deterministic, so optimizer state_dicts line up on resume.
    """
    head_ids = {id(p) for m in head_modules if m is not None for p in m.parameters()}
    groups: dict[tuple[float, float], list] = {}
    seen: set[int] = set()
    for module in unwrap_model(model).modules():
        norm = is_norm(module)
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if norm:
                wd = weight_decay_norm
            elif name == "bias":
                wd = weight_decay_bias
            else:
                wd = weight_decay
            lr_mult = float(head_lr_mult) if id(p) in head_ids else 1.0
            groups.setdefault((lr_mult, float(wd)), []).append(p)
    return [
        {"params": params, "lr_mult": lr_mult, "weight_decay": wd}
        for (lr_mult, wd), params in sorted(groups.items())
    ]


def model_head_modules(model: nn.Module) -> list[nn.Module]:
    """The modules a segmentor marks for the head LR multiplier (none for a model without head_modules)."""
    model = unwrap_model(model)
    fn = getattr(model, "head_modules", None)
    return list(fn()) if callable(fn) else []
