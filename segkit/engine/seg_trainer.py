"""Iteration-based training of a segmentor: CPU, one GPU, or DDP under torchrun.

One `SegTrainer(cfg, resume)` builds data, model, loss, optimizer and schedule from the config;
`train()` runs SOLVER.MAX_ITER iterations, logging every LOG_PERIOD, evaluating every
TEST.EVAL_PERIOD and at the end, checkpointing every SOLVER.CHECKPOINT_PERIOD and at the end.

Resume is exact on CPU: a checkpoint holds model, optimizer, scheduler, grad scaler and the
number of iterations done; the training loader is rebuilt from that number and python, numpy and
torch are reseeded from (SEED, rank, iteration) before every batch, so iteration k draws the same
batch and the same randomness whether or not the run was interrupted before it.

AMP: SOLVER.AMP.ENABLED autocasts on CUDA to SOLVER.AMP.DTYPE (float16 with a GradScaler,
bfloat16 without one). On CPU the switch is ignored with a warning and training stays float32:
CPU autocast is slower than float32 on most CPUs, so it would only make CPU runs differ from the
GPU recipe without buying speed.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from ..config import ConfigError
from ..data import build_dataset, build_train_loader, ensure_demo_dataset
from ..evaluation import evaluate_dataset, format_metrics_table, save_metrics
from ..evaluation.report import SUMMARY_METRICS, val_pictures
from ..losses import build_criterion
from ..models import build_model
from ..solver import build_lr_scheduler, build_optimizer, clip_gradients
from ..utils.amp import autocast
from ..utils.checkpoint import find_last_checkpoint, prune_checkpoints, save_checkpoint
from ..utils.analysis import min_batch_per_process
from ..utils.events import EventWriter, draw_curves
from ..utils.comm import all_reduce_sum, barrier, broadcast_buffers, is_main_process, reduce_mean_dict
from ..utils.meters import WindowMeters, format_eta
from ..utils.seed import seed_everything
from ..utils.training import (FINAL_CHECKPOINT, NonFiniteError, begin_training, convert_sync_batchnorm,
                              periodic_checkpoint_name, resume_training, setup_amp, training_state)
from ..zoo import load_initial_weights

CHECKPOINT_KIND = "segmentor"


class SegTrainer:
    """Builds everything a training run needs from `cfg`; `train()` runs it and returns the final metrics."""

    def __init__(self, cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> None:
        self.cfg = cfg
        self.run = run = begin_training(cfg, resume, overwrite)  # refuses a run over a run before writing
        self.rank, self.world_size, self.device, self.logger = run.rank, run.world_size, run.device, run.logger

        if is_main_process():
            ensure_demo_dataset(cfg)  # one writer; the other ranks wait for the finished folder
        barrier()
        self.train_set = build_dataset(cfg, cfg.DATASET.TRAIN_SPLIT)
        self.val_set = build_dataset(cfg, cfg.DATASET.VAL_SPLIT)
        if cfg.MODEL.NUM_CLASSES != self.train_set.num_classes:
            raise ConfigError(
                f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES} but dataset '{cfg.DATASET.NAME}' at "
                f"{cfg.DATASET.ROOT} has {self.train_set.num_classes} classes; set MODEL.NUM_CLASSES "
                f"{self.train_set.num_classes}"
            )

        model = load_initial_weights(build_model(cfg), cfg)
        self._warn_if_from_scratch(model)
        self._check_batch_per_process(model)
        model = convert_sync_batchnorm(model.to(self.device), cfg.MODEL.SYNC_BN, cfg.MODEL.NORM, run)
        self.model = model
        self.criterion = build_criterion(cfg, model, class_weights=self._class_weights()).to(self.device)
        self.optimizer = build_optimizer(cfg, model)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer, cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS)
        self.amp_dtype, self.scaler = setup_amp(cfg.SOLVER.AMP.ENABLED, cfg.SOLVER.AMP.DTYPE, run)
        self.ddp_model: nn.Module = model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)

        self.start_iter = 0
        if resume:
            self.resume()
        self.events = EventWriter(cfg.OUTPUT_DIR, cfg.LOG.TENSORBOARD, self.start_iter, enabled=is_main_process())
        self.logger.info(
            "model %s (%s), %.2fM parameters; %d train / %d val images",
            cfg.MODEL.NAME, cfg.MODEL.BACKBONE.NAME if hasattr(model, "backbone") else cfg.MODEL.VARIANT or "own stem",
            sum(p.numel() for p in model.parameters()) / 1e6, len(self.train_set), len(self.val_set),
        )

    # ------------------------------------------------------------------ setup helpers
    def _class_weights(self) -> list[float] | None:
        """Median-frequency weights from the training labels when LOSS.CLASS_WEIGHTING asks for them."""
        how = self.cfg.LOSS.CLASS_WEIGHTING
        if not how:
            return None
        if how != "median_freq":
            raise ConfigError(f"LOSS.CLASS_WEIGHTING must be '' or 'median_freq', got '{how}'")
        from ..data.stats import count_class_pixels, median_frequency_weights

        counts = torch.zeros(self.cfg.MODEL.NUM_CLASSES, dtype=torch.float64, device=self.device)
        if is_main_process():  # one pass over the labels, shared with the other ranks
            counts += torch.as_tensor(count_class_pixels(self.train_set), dtype=torch.float64, device=self.device)
        all_reduce_sum(counts)
        weights = median_frequency_weights([int(c) for c in counts.tolist()])
        self.logger.info("median-frequency class weights: %s", [round(w, 3) for w in weights])
        return weights

    def _warn_if_from_scratch(self, model: nn.Module) -> None:
        """Every published Cityscapes/CamVid result starts from ImageNet weights: say so when a recipe does not."""
        cfg = self.cfg
        if (cfg.DATASET.NAME in ("cityscapes", "camvid") and not cfg.DATASET.GENERATE_DEMO
                and hasattr(model, "backbone") and not (cfg.MODEL.BACKBONE.WEIGHTS or cfg.MODEL.WEIGHTS)):
            self.logger.warning(
                "%s (%s) on %s trains FROM SCRATCH: published results start from ImageNet-pretrained weights. "
                "Set MODEL.BACKBONE.WEIGHTS to a backbone export (tools/pretrain_cls.py, then tools/export_backbone.py) "
                "or a converted torchvision/timm file (tools/convert_weights.py).",
                cfg.MODEL.NAME, cfg.MODEL.BACKBONE.NAME, cfg.DATASET.NAME)

    def _check_batch_per_process(self, model: nn.Module) -> None:
        """A model whose BatchNorm normalises pooled 1x1 context needs 2 images per process (or SyncBN on
        GPUs); with 1 it would fail inside BatchNorm at the first step with a torch message."""
        cfg, world = self.cfg, self.world_size
        per_process = cfg.SOLVER.IMS_PER_BATCH // world
        synced = cfg.MODEL.SYNC_BN and world > 1 and self.device.type == "cuda"
        if per_process >= 2 or synced or cfg.MODEL.NORM != "BN":
            return
        if min_batch_per_process(model, tuple(cfg.INPUT.CROP_SIZE)) > 1:
            hint = " or set MODEL.SYNC_BN True" if world > 1 and self.device.type == "cuda" else ""
            raise ConfigError(
                f"SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} over a world size of {world} gives {per_process} "
                f"image per process, but {cfg.MODEL.NAME} normalises pooled context with BatchNorm, which needs at "
                f"least 2 per process: set SOLVER.IMS_PER_BATCH {2 * world}{hint}")

    @staticmethod
    def _iteration_seed(seed: int, rank: int, iteration: int) -> int:
        return int(np.random.SeedSequence([seed, rank, iteration]).generate_state(1)[0])

    # ------------------------------------------------------------------ checkpoints
    def resume(self) -> None:
        """Continue from the newest checkpoint in OUTPUT_DIR (a fresh start when there is none)."""
        found = resume_training(self.run, self.cfg.OUTPUT_DIR, CHECKPOINT_KIND, self.cfg.MODEL.NAME, self.model,
                                self.optimizer, self.scheduler, self.scaler, self.cfg)
        if found is None:
            return
        path, ckpt = found
        self.start_iter = int(ckpt["iteration"])
        self.logger.info("resumed from %s at iteration %d", path, self.start_iter)

    def save(self, name: str, iteration: int) -> None:
        """Write a full checkpoint, refusing weights that are not finite (the last good one stays)."""
        broadcast_buffers(self.model)  # every rank holds (and later evaluates) exactly what is written
        state = self.model.state_dict()
        # Every rank holds the same weights, so every rank reaches the same verdict without talking.
        bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise NonFiniteError(
                f"weights {bad[:3]} are not finite after iteration {iteration}; not writing {name}. "
                f"Last good checkpoint: {find_last_checkpoint(self.cfg.OUTPUT_DIR) or 'none'}"
            )
        if is_main_process():
            save_checkpoint(os.path.join(self.cfg.OUTPUT_DIR, name), training_state(
                CHECKPOINT_KIND, self.cfg.MODEL.NAME, self.cfg.dump(), self.model, self.optimizer, self.scheduler,
                self.scaler, iteration,
            ))
            self.logger.info("saved %s", os.path.join(self.cfg.OUTPUT_DIR, name))
        barrier()

    # ------------------------------------------------------------------ training
    def run_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        """One optimisation step on `batch`; returns the losses of this rank as floats."""
        images = batch["image"].to(self.device, non_blocking=True)
        labels = batch["label"].to(self.device, non_blocking=True)
        with autocast(self.device, self.amp_dtype):
            outputs = self.ddp_model(images)
            loss, parts = self.criterion(outputs, labels)
        names = ["loss", *parts]
        values = torch.stack([loss.detach().float(), *(p.detach().float() for p in parts.values())])
        # Every rank must stop together, or the others would wait forever in the next all-reduce.
        bad = all_reduce_sum((~torch.isfinite(values)).any().to(torch.float32).reshape(1))
        if bad.item() > 0:
            raise NonFiniteError(
                f"non-finite loss at iteration {iteration + 1}: "
                + ", ".join(f"{n}={v:.4g}" for n, v in zip(names, values.tolist()))
                + f" (on {int(bad.item())} of {self.world_size} processes). Stopping; last good checkpoint: "
                + f"{find_last_checkpoint(self.cfg.OUTPUT_DIR) or 'none'}. Lower SOLVER.BASE_LR, lengthen "
                + "SOLVER.WARMUP_ITERS or set SOLVER.CLIP_GRAD_NORM."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip_gradients(self.model, self.cfg.SOLVER.CLIP_GRAD_NORM, scaler=self.scaler, optimizer=self.optimizer)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return dict(zip(names, values.tolist()))

    def train(self) -> dict[str, Any]:
        """Run from `start_iter` to SOLVER.MAX_ITER; returns the final evaluation metrics."""
        cfg = self.cfg
        max_iter, log_period = cfg.SOLVER.MAX_ITER, max(1, cfg.LOG_PERIOD)
        ckpt_period, eval_period = cfg.SOLVER.CHECKPOINT_PERIOD, cfg.TEST.EVAL_PERIOD
        loader = build_train_loader(cfg, self.train_set, start_iter=self.start_iter)
        meters = WindowMeters(log_period)
        self.ddp_model.train()
        self.logger.info("training from iteration %d to %d", self.start_iter, max_iter)
        for it in range(self.start_iter, max_iter):
            start = time.perf_counter()
            seed_everything(self._iteration_seed(cfg.SEED, self.rank, it))
            batch = next(loader)
            data_time = time.perf_counter() - start
            losses = self.run_step(batch, it)
            meters.update(time=time.perf_counter() - start, data_time=data_time, **losses)
            done = it + 1
            if done % log_period == 0 or done == max_iter:
                self._log(done, meters)
            if ckpt_period > 0 and done % ckpt_period == 0 and done < max_iter:
                self.save(periodic_checkpoint_name(done), done)
                if is_main_process():
                    prune_checkpoints(cfg.OUTPUT_DIR, cfg.SOLVER.CHECKPOINT_KEEP)
            if eval_period > 0 and done % eval_period == 0 and done < max_iter:
                self.evaluate(done)
        if self.start_iter >= max_iter:
            self.logger.info("already at iteration %d of %d: nothing to train", self.start_iter, max_iter)
        else:
            self.save(FINAL_CHECKPOINT, max_iter)
        metrics = self.evaluate(max_iter)
        self.events.close()
        if is_main_process():
            draw_curves(self.cfg.OUTPUT_DIR)
        return metrics

    def _log(self, done: int, meters: WindowMeters) -> None:
        losses = reduce_mean_dict(meters.averages("loss"), self.device)
        sec = meters.avg("time")
        eta = format_eta(sec * (self.cfg.SOLVER.MAX_ITER - done))
        mem = ""
        if self.device.type == "cuda":
            mem = f"  max_mem: {torch.cuda.max_memory_allocated(self.device) / 2**20:.0f}M"
        lr = self.optimizer.param_groups[0]["lr"]
        self.logger.info(
            "iter: %d/%d  %s  lr: %.4g  time: %.3fs/it  data: %.3fs  eta: %s%s",
            done, self.cfg.SOLVER.MAX_ITER,
            "  ".join(f"{k}: {v:.4f}" for k, v in sorted(losses.items(), key=_loss_order)),
            lr, sec, meters.avg("data_time"), eta, mem,
        )
        self.events.scalars(done, {**losses, "lr": lr, "time": sec, "data_time": meters.avg("data_time")})

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, iteration: int) -> dict[str, Any]:
        """Evaluate on DATASET.VAL_SPLIT, log the table and write OUTPUT_DIR/metrics.json."""
        start = time.perf_counter()
        broadcast_buffers(self.model)  # rank 0's BN statistics, the ones its checkpoints hold, on every shard
        metrics = evaluate_dataset(self.model, self.val_set, self.cfg, self.device)  # restores train mode
        if is_main_process():
            self.logger.info(
                "evaluation on %s at iteration %d (%.1fs):\n%s",
                self.cfg.DATASET.VAL_SPLIT, iteration, time.perf_counter() - start, format_metrics_table(metrics),
            )
            save_metrics({"iteration": iteration, **metrics}, os.path.join(self.cfg.OUTPUT_DIR, "metrics.json"))
            self.events.scalars(iteration, {k: metrics[k] for k in SUMMARY_METRICS if k in metrics})
            if self.events.tb is not None:
                self.events.images(iteration, "val", val_pictures(self.model, self.val_set, self.cfg, self.device,
                                                                  self.cfg.LOG.NUM_VAL_IMAGES))
        return metrics


def _loss_order(item: tuple[str, float]) -> tuple[bool, bool, str]:
    # The total first, then the main head, then the auxiliary heads by name.
    return item[0] != "loss", item[0] != "loss_main", item[0]
