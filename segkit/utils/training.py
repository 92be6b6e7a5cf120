"""What the segmentation and the pretraining trainer do the same way: start a process, set up AMP and
SyncBN, and write and read checkpoints with one set of keys.

A training checkpoint holds `model`, `optimizer`, `scheduler`, `scaler`, `iteration`, `config` (the
YAML dump), `kind` ("segmentor" or "classifier") and `model_name`, plus what a trainer adds (pretraining:
`epoch`, `ema`, `best_top1`, `best_epoch`, `history`). Periodic checkpoints are `model_{iteration:07d}.pth`
and the last one `model_final.pth`, both through `save_checkpoint`, so `find_last_checkpoint` names the
newest of either.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
from dataclasses import dataclass
from typing import Any

import yaml

import torch
from torch import nn

from .amp import autocast_dtype, grad_scaler
from .checkpoint import CheckpointError, extract_model_state, load_newest_readable
from .comm import init_distributed
from .io import atomic_write_text, check_writable
from .logger import setup_logger
from .seed import seed_everything

FINAL_CHECKPOINT = "model_final.pth"
TRAINING_KEYS = ("model", "optimizer", "scheduler", "scaler", "iteration", "config", "kind", "model_name")


class NonFiniteError(FloatingPointError):
    """The loss or the weights stopped being finite; training stops without writing a checkpoint."""


@dataclass
class Run:
    """The process a trainer runs in."""

    rank: int
    world_size: int
    device: torch.device
    logger: logging.Logger


def start_run(output_dir: str | None, seed: int, deterministic: bool = False) -> Run:
    """Join the torchrun process group (if any), pick the device, log to the console and OUTPUT_DIR/log.txt
    (no file when `output_dir` is None) and seed every generator with seed + rank."""
    rank, world_size, device = init_distributed()
    logger = setup_logger(output_dir, rank)
    seed_everything(seed + rank, deterministic)
    if device.type == "cuda" and not deterministic:
        torch.backends.cudnn.benchmark = True  # both pipelines train at a fixed input size
    return Run(rank, world_size, device, logger)


def begin_training(cfg: Any, resume: bool, overwrite: bool) -> Run:
    """How both trainers start: refuse (or continue, or replace) an earlier run in OUTPUT_DIR before anything
    is written, then `start_run`, and save the merged config as OUTPUT_DIR/config.yaml (main process)."""
    claim_output_dir(cfg.OUTPUT_DIR, resume, overwrite)
    run = start_run(cfg.OUTPUT_DIR, cfg.SEED, cfg.DETERMINISTIC)
    path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
    if run.rank == 0:
        atomic_write_text(path, cfg.dump())  # the form segkit.config.load_cfg reads back
    run.logger.info("rank %d of %d on %s; config saved to %s", run.rank, run.world_size, run.device, path)
    return run


def periodic_checkpoint_name(iteration: int) -> str:
    return f"model_{iteration:07d}.pth"


def setup_amp(enabled: bool, dtype_name: str, run: Run) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """The autocast dtype (None: float32) and the matching GradScaler for SOLVER.AMP; warns when CUDA is missing."""
    dtype = autocast_dtype(enabled, dtype_name, run.device)
    if enabled and dtype is None:
        run.logger.warning("SOLVER.AMP.ENABLED needs CUDA; training on %s in float32", run.device)
    return dtype, grad_scaler(run.device, dtype)


def convert_sync_batchnorm(model: nn.Module, sync_bn: bool, norm: str, run: Run) -> nn.Module:
    """MODEL.SYNC_BN, the one switch for synchronised BN: BatchNorms become SyncBatchNorm when several GPU
    processes train; a single process or CPU processes keep plain BN (nothing to synchronise, or no kernel)."""
    if norm == "SyncBN":
        raise ValueError("MODEL.NORM SyncBN: set MODEL.NORM BN and MODEL.SYNC_BN True (the one SyncBN switch)")
    if not sync_bn:
        return model
    if run.world_size == 1:
        run.logger.info("MODEL.SYNC_BN ignored: a single process has nothing to synchronise")
        return model
    if run.device.type != "cuda":
        run.logger.warning("MODEL.SYNC_BN ignored: torch's SyncBatchNorm runs on GPUs only")
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def training_state(
    kind: str,
    model_name: str,
    config: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    iteration: int,
    **extra: Any,
) -> dict[str, Any]:
    """A checkpoint with the keys both trainers write (TRAINING_KEYS) and the trainer's own `extra`."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "iteration": int(iteration),
        "config": config,  # a YAML string: loads under weights_only=True
        "kind": kind,
        "model_name": model_name,
        **extra,
    }


def resume_training(
    run: Run,
    output_dir: str,
    kind: str,
    model_name: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    config: Any,
) -> tuple[str, dict[str, Any]] | None:
    """Load model, optimizer, scheduler and scaler from the newest readable checkpoint in `output_dir`;
    returns its path and contents, or None (logged) when there is none and the run starts fresh.

    A checkpoint of another kind or model is an error naming both; keys of `config` that differ from the
    checkpoint's config are listed in a warning, with which value the resumed run uses.
    """
    found = load_newest_readable(output_dir, run.logger.warning)
    if found is None:
        run.logger.info("--resume: no checkpoint in %s, starting from scratch", output_dir)
        return None
    path, ckpt = found
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint: it has no {missing} entries")
    if (ckpt["kind"], ckpt["model_name"]) != (kind, model_name):
        raise CheckpointError(f"{path} is a checkpoint of {ckpt['kind']} '{ckpt['model_name']}', "
                              f"this run trains {kind} '{model_name}'")
    changes = config_changes(ckpt["config"], config)
    if changes:
        run.logger.warning("the config differs from the one %s was trained with:\n  %s", path, "\n  ".join(changes))
    model.load_state_dict(extract_model_state(ckpt))
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt["scaler"]:  # empty when the saving run had no active GradScaler
        scaler.load_state_dict(ckpt["scaler"])
    return path, ckpt


# What a training run writes into OUTPUT_DIR; --overwrite removes exactly these, never other files.
RUN_FILES = ("config.yaml", "last_checkpoint", "metrics.json", "metrics_eval.json", "events.jsonl", "log.txt",
             "curves.png", "backbone_final.pth")
RUN_PATTERNS = ("model_*.pth", "*.tmp.*")


def existing_run(output_dir: str) -> list[str]:
    """The files of an earlier run in `output_dir` (names, sorted), or [] when it holds none."""
    if not os.path.isdir(output_dir):
        return []
    found = {f for f in RUN_FILES if os.path.exists(os.path.join(output_dir, f))}
    for pattern in RUN_PATTERNS:
        found |= {os.path.basename(p) for p in glob.glob(os.path.join(output_dir, pattern))}
    if os.path.isdir(os.path.join(output_dir, "tb")):
        found.add("tb/")
    # log.txt alone (a tool that only evaluated) is not a training run to protect.
    return sorted(found) if found - {"log.txt", "metrics_eval.json"} else []


def claim_output_dir(output_dir: str, resume: bool, overwrite: bool) -> None:
    """Refuse to start a new run over an earlier one, before anything is written.

    `resume` continues the run; `overwrite` removes the earlier run's files (RUN_FILES, checkpoints,
    tb/) and starts afresh, on the main process only (torchrun's RANK 0). Called before the logger
    opens log.txt, so a refused start changes nothing.
    """
    if resume and overwrite:
        raise ValueError("--resume continues the run in OUTPUT_DIR and --overwrite replaces it: give one")
    check_writable(output_dir, "OUTPUT_DIR", folder=True)  # before data and model are built
    found = existing_run(output_dir)
    if not found or resume:
        return
    if not overwrite:
        shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise ValueError(f"OUTPUT_DIR {output_dir} holds a run ({shown}): continue it with --resume, replace it "
                         "with --overwrite, or set another OUTPUT_DIR")
    if int(os.environ.get("RANK", "0")) == 0:
        for name in found:
            path = os.path.join(output_dir, name.rstrip("/"))
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


# Keys whose value a resumed run takes from the checkpoint: the optimizer and LR scheduler state hold them.
RESTORED_BY_CHECKPOINT = ("SOLVER.BASE_LR", "SOLVER.LR_REFERENCE_BATCH", "SOLVER.HEAD_LR_MULT", "SOLVER.MOMENTUM",
                          "SOLVER.NESTEROV", "SOLVER.WEIGHT_DECAY", "SOLVER.WEIGHT_DECAY_NORM",
                          "SOLVER.WEIGHT_DECAY_BIAS", "SOLVER.BETAS", "SOLVER.EPS", "SOLVER.RMSPROP_ALPHA",
                          "SOLVER.RMSPROP_EPS", "SOLVER.OPTIMIZER")


def config_changes(saved_yaml: str, cfg: Any) -> list[str]:
    """Lines naming every key whose value differs from the checkpoint's config, and which value the resumed
    run uses for it."""

    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    old = flat(yaml.safe_load(saved_yaml) or {})
    new = flat(yaml.safe_load(cfg.dump()))
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            keeps = "the checkpoint's value is kept" if key in RESTORED_BY_CHECKPOINT else "the new value is used"
            lines.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r} ({keeps})")
    return lines
