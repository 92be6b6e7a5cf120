"""Checkpoints written atomically and read back with weights_only=True."""
from __future__ import annotations

import glob
import os
import re
from typing import Any

import torch
from torch import nn

from .io import atomic_path, atomic_write_text

LAST_CHECKPOINT = "last_checkpoint"  # a text file naming the newest complete checkpoint


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """Write `state` to `path` through a temporary file and a rename, so a crash never leaves half a file."""
    save_state(path, state)
    atomic_write_text(os.path.join(os.path.dirname(os.path.abspath(path)), LAST_CHECKPOINT), os.path.basename(path))


def save_state(path: str, obj: Any) -> None:
    """torch.save `obj` to `path` atomically, without touching the resume marker (exports, final weights)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint or state_dict safely (tensors and plain containers only)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # unpickling errors carry no file name
        raise RuntimeError(f"cannot load checkpoint {path}: {e}") from e


def find_last_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint in `output_dir`, or None."""
    marker = os.path.join(output_dir, LAST_CHECKPOINT)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            path = os.path.join(output_dir, f.read().strip())
        if os.path.isfile(path):
            return path
    found = sorted(glob.glob(os.path.join(output_dir, "model_*.pth")), key=_iteration_of)
    return found[-1] if found else None


def _iteration_of(path: str) -> int:
    m = re.search(r"model_(\d+)\.pth$", path)
    return int(m.group(1)) if m else -1


def extract_model_state(obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights of a full checkpoint ({'model': ...}) or of a bare state_dict."""
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise TypeError(f"expected a state_dict, got {type(state).__name__}")
    # Weights saved from a DDP-wrapped model carry a 'module.' prefix.
    if state and all(k.startswith("module.") for k in state):
        state = strip_prefix(state, "module.")
    return state


def strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of `state` whose key starts with `prefix`, with the prefix removed (others dropped)."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_weights(
    module: nn.Module, path: str, what: str = "model", strict: bool = False, submodule: str | None = None
) -> tuple[list, list]:
    """Load weights into `module` from `path`, refusing tensors of the wrong shape.

    `submodule` names where `module` sits inside bigger models: when the file holds such a model
    (a classifier or a segmentor whose keys start with 'backbone.'), only that part is taken.
    Returns (missing, unexpected) key lists. A checkpoint of another model shows up as
    shape mismatches or as no key in common; both are errors naming the file and keys.
    """
    state = extract_model_state(load_checkpoint(path))
    prefix = f"{submodule}."
    if submodule and any(k.startswith(prefix) for k in state):
        state = strip_prefix(state, prefix)
    own = module.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs {what} {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise ValueError(f"{path} does not fit the {what}; first mismatching keys:\n  " + "\n  ".join(mismatched[:10]))
    if own and state and not set(own) & set(state):
        raise ValueError(
            f"{path} has no key in common with the {what}: it holds e.g. {sorted(state)[:3]}, "
            f"the {what} expects e.g. {sorted(own)[:3]}"
        )
    result = module.load_state_dict(state, strict=strict)
    return list(result.missing_keys), list(result.unexpected_keys)
