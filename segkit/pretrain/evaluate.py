"""Top-1 / top-5 of a classifier on the val set: during pretraining, and for a checkpoint (--eval-only)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from ..models.build import build_classifier
from ..utils.amp import autocast, autocast_dtype
from ..utils.checkpoint import load_weights
from ..utils.comm import stopped_on_any
from ..engine.run import start_run
from .data import build_cls_dataset, build_cls_val_loader, check_cls_config
from .backbone_weights import classifier_state


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose target is among the k highest logits, per k (k capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == target.view(-1, 1)
    return [int(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None = None,
    channels_last: bool = False, should_stop: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Top-1 / top-5 (percent) and mean CE loss over the loader, summed over processes.

    `should_stop`, asked before each batch, ends the loop early; then every process raises
    segkit.utils.comm.StoppedEarly (a trainer's evaluation giving way to a preemption signal).
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # correct@1, correct@5, loss sum, count
    stopped = False
    for images, target in loader:
        if should_stop is not None and should_stop():
            stopped = True
            break
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        target = target.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            logits = model(images)
        c1, c5 = topk_correct(logits, target)
        loss = nn.functional.cross_entropy(logits.float(), target, reduction="sum")
        sums += torch.tensor([c1, c5, float(loss), target.numel()], dtype=torch.float64, device=device)
    model.train(was_training)
    stopped_on_any(stopped, sums)
    n = max(float(sums[3]), 1.0)
    return {"top1": 100.0 * float(sums[0]) / n, "top5": 100.0 * float(sums[1]) / n, "loss": float(sums[2]) / n,
            "count": int(sums[3])}


def evaluate_weights(cfg: CfgNode, weights: str, use_ema: bool = False) -> dict[str, float]:
    """Top-1 / top-5 of a classifier checkpoint or state_dict (with `use_ema`: the checkpoint's EMA weights)
    on the config's val set (starts the process as a trainer does, logging to the console only)."""
    check_cls_config(cfg, train=False)  # what evaluation reads; the training keys may be anything here
    state = classifier_state(weights, use_ema)  # before the run starts: a file without EMA is one line
    run = start_run(None, cfg.SEED, cfg.DETERMINISTIC)
    net = build_classifier(cfg)
    load_weights(net, state, what=f"classifier {cfg.MODEL.NAME}", strict=True,
                 name=f"the EMA weights of {weights}" if use_ema else weights)
    net.to(run.device)
    if cfg.CHANNELS_LAST:
        net.to(memory_format=torch.channels_last)
    loader = build_cls_val_loader(cfg, build_cls_dataset(cfg, train=False), run.device)
    amp_dtype = autocast_dtype(cfg.SOLVER.AMP.ENABLED, cfg.SOLVER.AMP.DTYPE, run.device,
                               key="SOLVER.AMP.ENABLED")
    return evaluate_classifier(net, loader, run.device, amp_dtype, cfg.CHANNELS_LAST)
