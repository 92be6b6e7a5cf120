"""The start of a training run, what both trainers do the same way: the claim on OUTPUT_DIR (refuse,
continue or replace an earlier run), the process (torchrun group, device, logger, seed), the config-driven
AMP and SyncBN switches, and what a resume changes in the config.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
from dataclasses import dataclass
from typing import Any

import torch
import yaml
from torch import nn

from ..utils.amp import autocast_dtype, grad_scaler
from ..utils.comm import init_distributed
from ..utils.io import check_writable
from ..utils.logger import setup_logger
from ..utils.seed import seed_everything

# What a training run writes into OUTPUT_DIR; --overwrite removes exactly these, never other files.
RUN_FILES = ("config.yaml", "last_checkpoint", "metrics.json", "metrics_eval.json", "events.jsonl", "log.txt",
             "curves.png", "backbone_final.pth")
RUN_PATTERNS = ("model_*.pth", "*.tmp.*")
# Files a start leaves before its first iteration (and an evaluation tool's log.txt): no run to protect.
START_FILES = frozenset({"config.yaml", "log.txt", "metrics_eval.json"})


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


def existing_run(output_dir: str) -> list[str]:
    """The files of an earlier run in `output_dir` (names, sorted), or [] when it holds none.

    A start that stopped before its first checkpoint, log line or metric (a config, data or model error)
    leaves only config.yaml and log.txt: that is no run to protect, so its retry needs no --overwrite.
    """
    if not os.path.isdir(output_dir):
        return []
    found = {f for f in RUN_FILES if os.path.exists(os.path.join(output_dir, f))}
    for pattern in RUN_PATTERNS:
        found |= {os.path.basename(p) for p in glob.glob(os.path.join(output_dir, pattern))}
    if os.path.isdir(os.path.join(output_dir, "tb")):
        found.add("tb/")
    return sorted(found) if found - START_FILES else []


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


# Keys whose value a resumed run takes from the checkpoint: the optimizer and LR scheduler state hold them.
RESTORED_BY_CHECKPOINT = ("SOLVER.BASE_LR", "SOLVER.LR_REFERENCE_BATCH", "SOLVER.HEAD_LR_MULT", "SOLVER.MOMENTUM",
                          "SOLVER.NESTEROV", "SOLVER.WEIGHT_DECAY", "SOLVER.WEIGHT_DECAY_NORM",
                          "SOLVER.WEIGHT_DECAY_BIAS", "SOLVER.BETAS", "SOLVER.EPS", "SOLVER.RMSPROP_ALPHA",
                          "SOLVER.RMSPROP_EPS", "SOLVER.OPTIMIZER")


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def reconcile_resumed_config(saved_yaml: str, cfg: Any) -> tuple[Any, list[str]]:
    """The config a resumed run actually runs with, and lines naming every key that differs from the
    checkpoint's config with the value used.

    Keys the optimizer and scheduler state restore (RESTORED_BY_CHECKPOINT) take the checkpoint's value in
    the returned config too, so config.yaml and later checkpoints describe what runs.
    """
    old = _flat(yaml.safe_load(saved_yaml) or {})
    new = _flat(yaml.safe_load(cfg.dump()))
    kept = {k: old[k] for k in RESTORED_BY_CHECKPOINT if k in old and k in new and old[k] != new[k]}
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            keeps = "the checkpoint's value is kept" if key in kept else "the new value is used"
            lines.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r} ({keeps})")
    if not kept:
        return cfg, lines
    resolved = cfg.clone()
    resolved.defrost()
    resolved.merge_from_list([x for k, v in kept.items() for x in (k, v)])
    if cfg.is_frozen():
        resolved.freeze()
    return resolved, lines
