"""Checkpoints written atomically and read back with weights_only=True."""
from __future__ import annotations

import glob
import os
import pickle
import re
from typing import Any, Callable, Collection, Mapping

import torch
from torch import nn
from yacs.config import CfgNode

from .io import atomic_path, atomic_write_text

LAST_CHECKPOINT = "last_checkpoint"  # a text file naming the newest complete checkpoint
SEGMENTOR_KIND = "segmentor"  # the `kind` of a segmentation model's checkpoint, trained or converted


def model_entries(state: Mapping[str, torch.Tensor], cfg: CfgNode, kind: str) -> dict[str, Any]:
    """The entries of every checkpoint segkit writes of a model, whoever writes it (the trainer, tools/zoo.py
    convert): the weights, the merged config as YAML (a string: it loads under weights_only=True), and the kind
    of model and its MODEL.NAME, which a resume checks."""
    return {"model": state, "config": cfg.dump(), "kind": kind, "model_name": cfg.MODEL.NAME}


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
    if path.lower().endswith(".onnx"):  # torch.load's own advice (weights_only=False) would be wrong here
        raise CheckpointError(f"{path} is an ONNX file, not a PyTorch checkpoint (tools/evaluate.py takes it with --onnx)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused an object: not a plain checkpoint
        raise CheckpointError(f"{path} holds objects other than tensors and plain containers; segkit loads "
                              f"checkpoints with weights_only=True ({_first_line(e)})") from e
    except Exception as e:  # a torn zip archive or pickle: torch's messages name no file
        raise CheckpointError(f"{path} is truncated or corrupt and cannot be read ({_first_line(e)})") from e


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not belong to the run; the message names the file."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def find_last_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint in `output_dir`, or None."""
    marker = os.path.join(output_dir, LAST_CHECKPOINT)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            path = os.path.join(output_dir, f.read().strip())
        if os.path.isfile(path):
            return path
    # Without the marker: the final checkpoint, else the highest periodic one. model_best.pth is never the
    # newest: it is written beside the periodic checkpoint of the same epoch.
    found = _numbered_checkpoints(output_dir)
    return found[0] if found else None


def _numbered_checkpoints(output_dir: str, with_final: bool = True) -> list[str]:
    """model_<iteration>.pth of `output_dir` (and model_final.pth, newest of all), newest first."""
    found = [p for p in glob.glob(os.path.join(output_dir, "model_*.pth")) if _iteration_of(p) >= 0]
    if not with_final:
        found = [p for p in found if _iteration_of(p) != float("inf")]
    return sorted(found, key=_iteration_of, reverse=True)


def _iteration_of(path: str) -> float:
    if os.path.basename(path) == "model_final.pth":
        return float("inf")
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
    module: nn.Module, path: str | Mapping[str, torch.Tensor], what: str = "model", strict: bool = True,
    submodule: str | None = None, name: str | None = None, reinit: Collection[str] = (),
) -> tuple[list, list]:
    """Load weights into `module` from `path`; returns the (missing, unexpected) key lists.

    `path` is a file or a state_dict already read (from another format, a download); `name` is what
    the messages call it (default: the path). Keys in `reinit` whose shape differs from the module's (the
    class layers, when fine-tuning for another class count) keep the module's initialisation and are
    returned as missing without counting against `strict`.

    `submodule` names where `module` sits inside bigger models: when the file holds such a model
    (a classifier or a segmentor whose keys start with 'backbone.'), only that part is taken.
    Tensors of the wrong shape and files with no key in common are always errors. With `strict`
    (the default) any missing or unexpected key is one too: weights of another depth or variant
    (a ResNet-34 file for a ResNet-18) share most key names and would otherwise half-load silently.
    Every error names the file and a few keys.
    """
    if isinstance(path, str):
        name, state = name or path, extract_model_state(load_checkpoint(path))
    else:
        name, state = name or "the state_dict", dict(path)
    prefix = f"{submodule}."
    if submodule and any(k.startswith(prefix) for k in state):
        state = strip_prefix(state, prefix)
    own = module.state_dict()
    kept = {k for k in reinit if k in state and k in own and tuple(state[k].shape) != tuple(own[k].shape)}
    state = {k: v for k, v in state.items() if k not in kept}
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs {what} {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise CheckpointError(f"{name} does not fit the {what}; first mismatching keys:\n  " + "\n  ".join(mismatched[:10]))
    if own and state and not set(own) & set(state):
        raise CheckpointError(
            f"{name} has no key in common with the {what}: it holds e.g. {sorted(state)[:3]}, "
            f"the {what} expects e.g. {sorted(own)[:3]}"
        )
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (set(missing) - kept or unexpected):
        raise CheckpointError(
            f"{name} does not match the {what}: {len(missing)} missing keys {missing[:4]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:4]} (weights of another depth or variant?)"
        )
    module.load_state_dict(state, strict=False)
    return missing, unexpected


def checkpoint_candidates(output_dir: str) -> list[str]:
    """Checkpoints a resume may start from, newest first: the marker's file, model_final.pth, then the
    periodic model_<iteration>.pth by iteration."""
    found = _numbered_checkpoints(output_dir)
    newest = find_last_checkpoint(output_dir)
    return ([newest] if newest else []) + [p for p in found if p != newest]


def load_newest_readable(output_dir: str, warn: Callable[[str], None]) -> tuple[str, dict[str, Any]] | None:
    """The newest checkpoint of `output_dir` that loads, with its content, or None when there is none.

    A file that does not load (killed mid-copy, a full disk, a torn download) is skipped with a `warn`
    line naming it and the reason, and the next older one is tried. Temporaries left by a killed writer
    are removed first.
    """
    remove_stale_temporaries(output_dir, warn)
    for path in checkpoint_candidates(output_dir):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as e:
            warn(f"skipping unreadable checkpoint: {e}")
    return None


def remove_stale_temporaries(output_dir: str, warn: Callable[[str], None] | None = None) -> list[str]:
    """Delete `*.tmp.<pid>` files of writers that no longer run (a live writer's file is left alone)."""
    removed = []
    for tmp in glob.glob(os.path.join(output_dir, "*.tmp.*")):
        pid = tmp.rsplit(".tmp.", 1)[1]
        if pid.isdigit() and _process_alive(int(pid)):
            continue
        os.remove(tmp)
        removed.append(tmp)
        if warn:
            warn(f"removed {tmp}, left by an interrupted write")
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_checkpoints(output_dir: str, keep: int) -> list[str]:
    """Delete all but the newest `keep` periodic checkpoints (model_<iteration>.pth); keep <= 0 keeps all.

    model_final.pth, model_best.pth and the file the resume marker names are never deleted.
    """
    if keep <= 0:
        return []
    marker = find_last_checkpoint(output_dir)
    periodic = _numbered_checkpoints(output_dir, with_final=False)
    doomed = [p for p in periodic[keep:] if p != marker]
    for p in doomed:
        os.remove(p)
    return doomed


# Entries only a resumed training run reads; weights for sharing leave them out.
# Training state (the engine's, a distillation projection and a mean teacher included) that inference never reads.
TRAINING_ONLY_KEYS = ("optimizer", "scheduler", "scaler", "ema", "history", "epoch_loss", "frozen", "distill",
                      "pending_evaluation")


def strip_checkpoint(src: str, dst: str, use_ema: bool = False) -> dict[str, Any]:
    """Write checkpoint `src` to `dst` without the state only training needs (optimizer moments, scheduler,
    grad scaler, EMA, history): the weights and every other entry, the config included, so `dst` works as
    `--weights` wherever `src` did. `use_ema`: the EMA weights (pretraining) become the model's. Returns
    what was written.
    """
    ckpt = load_checkpoint(src)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{src} holds no training state to strip: it is a bare state_dict already")
    stripped = {k: v for k, v in ckpt.items() if k not in TRAINING_ONLY_KEYS}
    if use_ema:
        if not isinstance(ckpt.get("ema"), dict):
            raise CheckpointError(f"{src} has no EMA weights (trained with EMA.ENABLED False?): strip without --ema")
        stripped["model"] = ckpt["ema"]["module"]
    save_state(dst, stripped)
    return stripped
