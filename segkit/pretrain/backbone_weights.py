"""The backbone-only state_dict of a pretraining checkpoint: what MODEL.BACKBONE.WEIGHTS of a segmentation
config loads."""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ..utils.checkpoint import extract_model_state, load_checkpoint, save_state, strip_prefix

CHECKPOINT_KIND = "classifier"  # the `kind` of pretraining checkpoints
_CLASSIFIER_PREFIXES = ("backbone.", "pre_logits.", "fc.")


def classifier_backbone_state(state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The `backbone.*` part of a classifier state_dict, prefix removed; refuses anything else."""
    keys = list(state)
    foreign = [k for k in keys if not k.startswith(_CLASSIFIER_PREFIXES)]
    if "fc.weight" not in state or not any(k.startswith("backbone.") for k in keys) or foreign:
        raise ValueError(
            f"{source} is not a segkit classifier checkpoint (expected only backbone.*, pre_logits.*, fc.* keys "
            f"with fc.weight; got e.g. {(foreign or keys)[:4]})"
        )
    return strip_prefix(dict(state), "backbone.")


def classifier_state(checkpoint: str | Mapping[str, Any], use_ema: bool = False) -> dict[str, torch.Tensor]:
    """The classifier's state_dict in a pretraining checkpoint (or a bare state_dict): its raw weights, or with
    `use_ema` the moving average a run with EMA.ENABLED kept."""
    source = checkpoint if isinstance(checkpoint, str) else "checkpoint"
    obj = load_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source} holds a {type(obj).__name__}, not a classifier checkpoint")
    kind = obj.get("kind")
    if isinstance(kind, str) and kind != CHECKPOINT_KIND:
        raise ValueError(f"{source} is a '{kind}' checkpoint, not a classifier: export its backbone from a pretraining run")
    if use_ema:
        if not isinstance(obj.get("ema"), Mapping):
            raise ValueError(f"{source} has no EMA weights (trained with EMA.ENABLED False?); use the raw model")
        return extract_model_state(obj["ema"]["module"])
    return extract_model_state(dict(obj))


def export_backbone(checkpoint: str | Mapping[str, Any], out_path: str, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """Write the backbone-only state_dict of a classifier checkpoint (raw weights, or the EMA's) to `out_path`."""
    source = checkpoint if isinstance(checkpoint, str) else "checkpoint"
    backbone = classifier_backbone_state(classifier_state(checkpoint, use_ema), source)
    save_state(out_path, backbone)
    return backbone
