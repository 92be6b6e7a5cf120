"""The loss registry and the segmentation criterion: one loss term per model output, weighted and summed.

LOSSES maps a name to a builder(cfg, class_weight) -> loss module. A loss module's forward takes the
predictions its `inputs` attribute names, in that order ("logits": class logits [N,C,H,W], the default;
"binary": one-channel logits [N,1,H,W]; the distillation terms also "teacher_logits", "feature",
"teacher_feature"), then the label map [N,H,W], and returns a scalar. Adding a loss:
write its module in segkit/losses/ and add one line to LOSSES.

Which loss an output gets is declared by the model (segkit.models.segmentors.base.Segmentor): the main logits
get LOSS.NAME; auxiliary head h gets `model.aux_losses[h]`, or LOSS.AUX_NAME where the model names none, with
the weight from LOSS.AUX_WEIGHTS or `model.default_aux_weights`; each `model.joint_losses` entry adds a term
over several outputs ("main" or aux names), such as PIDNet's OHEM on the main logits at predicted boundaries.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from ..utils.comm import unwrap_model
from .boundary import BoundaryAwareOhem, BoundaryBCE
from .cross_entropy import CrossEntropy
from .detail import DetailAggregationLoss
from .distill import ChannelWiseDivergence, PixelKL
from .ohem import OhemCrossEntropy

LossBuilder = Callable[[CfgNode, "torch.Tensor | None"], nn.Module]


def _ohem(cfg: CfgNode, weight: torch.Tensor | None) -> OhemCrossEntropy:
    loss = cfg.LOSS
    return OhemCrossEntropy(
        loss.OHEM_THRESH, loss.OHEM_MIN_KEPT_RATIO, cfg.DATASET.IGNORE_INDEX, weight, min_kept=loss.OHEM_MIN_KEPT
    )


LOSSES: dict[str, LossBuilder] = {
    "ohem": _ohem,
    "ce": lambda cfg, weight: CrossEntropy(weight, ignore_index=cfg.DATASET.IGNORE_INDEX),
    "boundary_bce": lambda cfg, weight: BoundaryBCE(),  # PIDNet's boundary head
    "boundary_ohem": lambda cfg, weight: BoundaryAwareOhem(_ohem(cfg, weight), cfg.LOSS.BOUNDARY_THRESH),
    "detail": lambda cfg, weight: DetailAggregationLoss(),  # STDC-Seg's detail head
    # Distillation terms (TEACHER.LOSSES): they take the teacher's outputs besides the student's (distill.py).
    "kd": lambda cfg, weight: PixelKL(cfg.TEACHER.KD_TEMPERATURE, cfg.DATASET.IGNORE_INDEX),
    "cwd": lambda cfg, weight: ChannelWiseDivergence(cfg.TEACHER.CWD_TEMPERATURE),
    "cwd_feature": lambda cfg, weight: ChannelWiseDivergence(cfg.TEACHER.FEATURE_TEMPERATURE,
                                                             inputs=("feature", "teacher_feature")),
}


def loss_inputs(loss: nn.Module) -> tuple[str, ...]:
    """What a loss module's forward takes before the labels (see the module docstring)."""
    return tuple(getattr(loss, "inputs", ("logits",)))


def build_seg_loss(name: str, cfg: CfgNode, weight: torch.Tensor | None, key: str = "LOSS.NAME") -> nn.Module:
    """The loss LOSSES[name] with the config's settings and class weights; `key` names the source in errors."""
    if name not in LOSSES:
        raise ValueError(f"unknown {key} '{name}', expected one of {sorted(LOSSES)}")
    return LOSSES[name](cfg, weight)


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
    """criterion(outputs, target) -> (total, {"loss_main": .., "loss_<aux>": .., "loss_<joint>": ..}).

    `outputs` is the segmentor's train-mode result (logits, OrderedDict aux_name -> logits) or plain
    logits (only the main head, and joint terms on it alone, are counted). The dict holds each term's loss
    before its weight, detached, for logging; `total` = main + sum(weight_i * term_i) is what to backpropagate.
    `joint` maps a term name to (loss, the outputs it takes: "main" or aux names, weight).
    """

    def __init__(
        self,
        main: nn.Module,
        aux: "OrderedDict[str, nn.Module]",
        aux_weights: Sequence[float],
        joint: "Mapping[str, tuple[nn.Module, Sequence[str], float]] | None" = None,
    ) -> None:
        super().__init__()
        joint = joint or {}
        self.main = main
        self.aux = nn.ModuleDict(aux)  # each aux head has its own loss instance
        self.aux_weights = dict(zip(aux.keys(), (float(w) for w in aux_weights)))
        self.joint = nn.ModuleDict({name: loss for name, (loss, _, _) in joint.items()})
        self.joint_sources = {name: tuple(sources) for name, (_, sources, _) in joint.items()}
        self.joint_weights = {name: float(w) for name, (_, _, w) in joint.items()}

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
        terms = [(name, loss_fn, (aux.get(name),), self.aux_weights[name]) for name, loss_fn in self.aux.items()]
        available = {"main": logits, **aux}
        for name, loss_fn in self.joint.items():
            preds = tuple(available.get(s) for s in self.joint_sources[name])
            terms.append((name, loss_fn, preds, self.joint_weights[name]))
        for name, loss_fn, preds, weight in terms:
            if any(p is None for p in preds):  # eval-mode outputs: the aux heads are absent
                continue
            loss = loss_fn(*preds, target)
            parts[f"loss_{name}"] = loss.detach()
            total = total + weight * loss
        return total, parts


def build_criterion(cfg: CfgNode, model: nn.Module, class_weights: Sequence[float] | None = None) -> SegCriterion:
    """The criterion for `model` (see the module docstring); class weights from LOSS.CLASS_WEIGHTS or
    `class_weights` (e.g. segkit.data.stats.median_frequency_weights) reach every class-logit loss."""
    model = unwrap_model(model)
    kind = type(model).__name__
    aux_names = tuple(getattr(model, "aux_names", ()))
    weights = list(cfg.LOSS.AUX_WEIGHTS) or list(getattr(model, "default_aux_weights", ()))
    if len(weights) != len(aux_names):
        source = "LOSS.AUX_WEIGHTS" if cfg.LOSS.AUX_WEIGHTS else f"{kind}.default_aux_weights"
        raise ValueError(
            f"{source} has {len(weights)} values {weights} but {kind} has "
            f"{len(aux_names)} auxiliary heads {list(aux_names)}: give one weight per head"
        )
    w = resolve_class_weights(cfg, class_weights)
    main = _checked(cfg.LOSS.NAME, cfg, w, "LOSS.NAME", 1, ("logits",))
    declared = dict(getattr(model, "aux_losses", {}))
    if set(declared) - set(aux_names):
        raise ValueError(f"{kind}.aux_losses names {sorted(set(declared) - set(aux_names))}, not aux heads {aux_names}")
    aux = OrderedDict()
    for head in aux_names:
        key = f"{kind}.aux_losses['{head}']" if head in declared else "LOSS.AUX_NAME"
        aux[head] = _checked(declared.get(head, cfg.LOSS.AUX_NAME), cfg, w, key, 1)
    joint = OrderedDict()
    for term, (loss_name, sources, weight) in dict(getattr(model, "joint_losses", {})).items():
        bad = [s for s in sources if s != "main" and s not in aux_names]
        if bad or term == "main" or term in aux_names:
            raise ValueError(f"{kind}.joint_losses['{term}']: a new term name over 'main' / {list(aux_names)}, "
                             f"got sources {list(sources)}")
        joint[term] = (_checked(loss_name, cfg, w, f"{kind}.joint_losses['{term}']", len(sources)), sources, weight)
    return SegCriterion(main, aux, weights, joint)


def _checked(
    name: str, cfg: CfgNode, weight: torch.Tensor | None, key: str, arity: int, inputs: tuple[str, ...] | None = None
) -> nn.Module:
    """build_seg_loss, refusing a loss that takes other predictions than the place it is used gives it."""
    loss = build_seg_loss(name, cfg, weight, key)
    got = loss_inputs(loss)
    if len(got) != arity or (inputs is not None and got != inputs):
        want = list(inputs) if inputs else f"{arity} prediction(s)"
        raise ValueError(f"{key} '{name}' takes {list(got)}, but is used where it gets {want}")
    return loss
