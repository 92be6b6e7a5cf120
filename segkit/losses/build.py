"""The segmentation criterion: one loss per output head, weighted and summed, from the config."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from ..solver.param_groups import unwrap_model
from .cross_entropy import CrossEntropy
from .ohem import OhemCrossEntropy

LOSS_NAMES = ("ohem", "ce")


def build_seg_loss(
    name: str, cfg: CfgNode, weight: torch.Tensor | None, key: str = "LOSS.NAME"
) -> nn.Module:
    """An OHEM or plain CE loss with the config's ignore index and OHEM settings."""
    ignore = cfg.DATASET.IGNORE_INDEX
    if name == "ohem":
        return OhemCrossEntropy(cfg.LOSS.OHEM_THRESH, cfg.LOSS.OHEM_MIN_KEPT_RATIO, ignore, weight)
    if name == "ce":
        return CrossEntropy(weight, ignore_index=ignore)
    raise ValueError(f"unknown {key} '{name}', expected one of {LOSS_NAMES}")


def resolve_class_weights(cfg: CfgNode, class_weights: Sequence[float] | None) -> torch.Tensor | None:
    """LOSS.CLASS_WEIGHTS or the computed `class_weights` (never both), checked against MODEL.NUM_CLASSES."""
    from_cfg = list(cfg.LOSS.CLASS_WEIGHTS)
    given = None if class_weights is None else list(torch.as_tensor(class_weights).flatten().tolist())
    if from_cfg and given is not None:
        raise ValueError(
            "class weights given twice: LOSS.CLASS_WEIGHTS is set and weights were computed "
            f"(LOSS.CLASS_WEIGHTING='{cfg.LOSS.CLASS_WEIGHTING}'); keep one"
        )
    weights = from_cfg or given
    if not weights:
        return None
    key = "LOSS.CLASS_WEIGHTS" if from_cfg else "class_weights"
    if len(weights) != cfg.MODEL.NUM_CLASSES:
        raise ValueError(f"{key} has {len(weights)} values but MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}")
    if any(not float(w) >= 0 or w == float("inf") for w in weights):
        raise ValueError(f"{key} must be finite and >= 0, got {weights}")
    return torch.tensor(weights, dtype=torch.float32)


class SegCriterion(nn.Module):
    """criterion(outputs, target) -> (total, {"loss_main": .., "loss_<aux>": ..}).

    `outputs` is the segmentor's train-mode result (logits, OrderedDict aux_name -> logits) or plain
    logits (only the main head is counted). The dict holds each head's loss before its weight,
    detached, for logging; `total` = main + sum(weight_i * aux_i) is what to backpropagate.
    """

    def __init__(self, main: nn.Module, aux: "OrderedDict[str, nn.Module]", aux_weights: Sequence[float]) -> None:
        super().__init__()
        self.main = main
        self.aux = nn.ModuleDict(aux)  # each aux head has its own OHEM instance
        self.aux_weights = dict(zip(aux.keys(), (float(w) for w in aux_weights)))

    def forward(self, outputs: Any, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if isinstance(outputs, (tuple, list)):
            if len(outputs) != 2:
                raise ValueError(f"expected (logits, aux dict) from the model, got a sequence of {len(outputs)}")
            logits, aux = outputs
        else:
            logits, aux = outputs, {}
        aux = dict(aux or {})
        unknown = sorted(set(aux) - set(self.aux))
        if unknown:
            raise KeyError(f"model returned aux outputs {unknown} without a loss; expected {list(self.aux)}")
        total = self.main(logits, target)
        parts = {"loss_main": total.detach()}
        for name, loss_fn in self.aux.items():
            if name not in aux:
                continue
            loss = loss_fn(aux[name], target)
            parts[f"loss_{name}"] = loss.detach()
            total = total + self.aux_weights[name] * loss
        return total, parts


def build_criterion(cfg: CfgNode, model: nn.Module, class_weights: Sequence[float] | None = None) -> SegCriterion:
    """The criterion for `model`: LOSS.NAME on the main head, LOSS.AUX_NAME on each of model.aux_names,
    weighted by LOSS.AUX_WEIGHTS (empty: model.default_aux_weights); class weights from
    LOSS.CLASS_WEIGHTS or `class_weights` (e.g. segkit.data.stats.median_frequency_weights)."""
    model = unwrap_model(model)
    aux_names = tuple(getattr(model, "aux_names", ()))
    weights = list(cfg.LOSS.AUX_WEIGHTS) or list(getattr(model, "default_aux_weights", ()))
    if len(weights) != len(aux_names):
        source = "LOSS.AUX_WEIGHTS" if cfg.LOSS.AUX_WEIGHTS else f"{type(model).__name__}.default_aux_weights"
        raise ValueError(
            f"{source} has {len(weights)} values {weights} but {type(model).__name__} has "
            f"{len(aux_names)} auxiliary heads {list(aux_names)}: give one weight per head"
        )
    w = resolve_class_weights(cfg, class_weights)
    main = build_seg_loss(cfg.LOSS.NAME, cfg, w, "LOSS.NAME")
    aux = OrderedDict((n, build_seg_loss(cfg.LOSS.AUX_NAME, cfg, w, "LOSS.AUX_NAME")) for n in aux_names)
    return SegCriterion(main, aux, weights)
