"""ImageNet-style classifier training: epochs of train + val (raw model and EMA), checkpoints, backbone export.

Built the way SegTrainer is (segkit.utils.training): the trainer starts the process itself, picks the
device, builds optimizer and schedule from the shared SOLVER keys and writes checkpoints with the same
keys and names. Every epoch ends with `model_{iteration:07d}.pth` (SOLVER.CHECKPOINT_KEEP of them kept),
`model_best.pth` when val top-1 improved, and the last epoch with `model_final.pth` and
`backbone_final.pth`.

Every epoch reseeds all random generators from (SEED, epoch, rank) and reshuffles with a seeded
DistributedSampler, so a run resumed from the checkpoint of epoch k follows the curve of an
uninterrupted run exactly (same data order, augmentation, mixup draws and dropout masks).
"""
from __future__ import annotations

import os
import random
import time
from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

from ..models.build import build_classifier
from ..models.classifier import create_classifier
from ..solver import ModelEma, build_lr_scheduler, build_optimizer, clip_gradients, peak_lr
from ..utils.amp import autocast
from ..utils.checkpoint import find_last_checkpoint, load_weights, prune_checkpoints, save_checkpoint, save_state
from ..utils.comm import barrier, is_main_process, reduce_mean_dict
from ..utils.events import EventWriter, draw_curves
from ..utils.io import atomic_write_json
from ..utils.progress import progress
from ..utils.meters import format_eta
from ..utils.seed import seed_everything
from ..utils.training import (FINAL_CHECKPOINT, NonFiniteError, begin_training, convert_sync_batchnorm,
                              periodic_checkpoint_name, resume_training, setup_amp, training_state)
from .data import build_cls_dataset, build_cls_train_loader, build_cls_val_loader
from .demo import ensure_demo_cls_dataset
from .evaluate import evaluate_classifier
from .backbone_weights import CHECKPOINT_KIND, export_backbone
from .losses import ClassificationLoss, DistillationLoss
from .mix import Mixup

BEST_CHECKPOINT = "model_best.pth"


class ClsTrainer:
    """Holds model, EMA, optimiser, schedule and loaders of one run; `train()` runs the remaining epochs."""

    def __init__(self, cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> None:
        if cfg.EXPORT not in ("raw", "ema"):
            raise ValueError(f"EXPORT must be 'raw' or 'ema', got '{cfg.EXPORT}'")
        if cfg.EXPORT == "ema" and not cfg.EMA.ENABLED:
            raise ValueError("EXPORT is 'ema' but EMA.ENABLED is False")
        self.cfg = cfg
        self.run = run = begin_training(cfg, resume, overwrite)  # refuses a run over a run before writing
        self.rank, self.world_size, self.device, self.logger = run.rank, run.world_size, run.device, run.logger
        if is_main_process():
            ensure_demo_cls_dataset(cfg)  # one writer; the other ranks wait for the finished folder
        barrier()
        self.train_set = build_cls_dataset(cfg, train=True)
        self.val_set = build_cls_dataset(cfg, train=False, classes=self.train_set.classes)
        self.train_loader = build_cls_train_loader(cfg, self.train_set, self.device)
        self.iters_per_epoch = len(self.train_loader)
        if self.iters_per_epoch == 0:
            raise ValueError(f"{len(self.train_set)} training images give no full batch of "
                             f"{self.train_loader.batch_size} per process")
        self.val_loader = build_cls_val_loader(cfg, self.val_set, self.device)

        net = convert_sync_batchnorm(build_classifier(cfg), cfg.MODEL.SYNC_BN, cfg.MODEL.NORM, run).to(self.device)
        if cfg.CHANNELS_LAST:
            net.to(memory_format=torch.channels_last)
        self.net = net
        self.ema = ModelEma(net, cfg.EMA.DECAY, cfg.EMA.WARMUP) if cfg.EMA.ENABLED else None
        self.lr = peak_lr(cfg)
        self.optimizer = build_optimizer(cfg, net)
        s = cfg.SOLVER
        self.max_iter = s.EPOCHS * self.iters_per_epoch
        warmup_iters = min(s.WARMUP_EPOCHS * self.iters_per_epoch, self.max_iter)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer, self.max_iter, warmup_iters)
        self.amp_dtype, self.scaler = setup_amp(s.AMP.ENABLED, s.AMP.DTYPE, run)

        a = cfg.AUG
        self.mixup = None
        if a.MIXUP_ALPHA > 0 or a.CUTMIX_ALPHA > 0:
            self.mixup = Mixup(mixup_alpha=a.MIXUP_ALPHA, cutmix_alpha=a.CUTMIX_ALPHA, prob=a.MIX_PROB,
                               switch_prob=a.SWITCH_PROB, label_smoothing=a.LABEL_SMOOTHING,
                               num_classes=cfg.MODEL.NUM_CLASSES)
        self.criterion = ClassificationLoss(label_smoothing=a.LABEL_SMOOTHING)
        self.teacher = self._build_teacher() if cfg.KD.TEACHER_WEIGHTS else None
        self.distill = (DistillationLoss(self.criterion, alpha=cfg.KD.ALPHA, temperature=cfg.KD.TEMPERATURE,
                                         kind=cfg.KD.KIND) if self.teacher is not None else None)

        model: nn.Module = net
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        self.train_model = torch.compile(model) if cfg.COMPILE else model
        self.eval_model = torch.compile(net) if cfg.COMPILE else net

        self.start_epoch, self.history = 0, []
        self.best_top1, self.best_epoch = -1.0, -1
        if resume:
            self._resume()
        self.events = EventWriter(cfg.OUTPUT_DIR, cfg.LOG.TENSORBOARD, self.start_epoch * self.iters_per_epoch,
                                  enabled=is_main_process())

    # ------------------------------------------------------------------ setup helpers
    def _build_teacher(self) -> nn.Module:
        kd = self.cfg.KD
        teacher = create_classifier(kd.TEACHER_NAME or self.cfg.MODEL.NAME, num_classes=self.cfg.MODEL.NUM_CLASSES)
        load_weights(teacher, kd.TEACHER_WEIGHTS, what="teacher classifier", strict=True)
        teacher.to(self.device).eval().requires_grad_(False)
        if self.cfg.CHANNELS_LAST:
            teacher.to(memory_format=torch.channels_last)
        self.logger.info("distilling from %s (%s), T=%.2f alpha=%.2f", kd.TEACHER_WEIGHTS,
                         kd.TEACHER_NAME or self.cfg.MODEL.NAME, kd.TEMPERATURE, kd.ALPHA)
        return teacher

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, epoch: int) -> dict[str, Any]:
        return training_state(
            CHECKPOINT_KIND, self.cfg.MODEL.NAME, self.cfg.dump(), self.net, self.optimizer, self.scheduler,
            self.scaler, epoch * self.iters_per_epoch, epoch=epoch,
            ema=self.ema.state_dict() if self.ema is not None else None,
            best_top1=self.best_top1, best_epoch=self.best_epoch, history=self.history,
        )

    def _resume(self) -> None:
        found = resume_training(self.run, self.cfg.OUTPUT_DIR, CHECKPOINT_KIND, self.cfg.MODEL.NAME, self.net,
                                self.optimizer, self.scheduler, self.scaler, self.cfg)
        if found is None:
            return
        path, ckpt = found
        if self.ema is not None:
            if ckpt.get("ema") is None:
                raise ValueError(f"{path} has no EMA state but EMA.ENABLED is True")
            self.ema.load_state_dict(ckpt["ema"])
        self.start_epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        self.best_top1, self.best_epoch = float(ckpt["best_top1"]), int(ckpt["best_epoch"])
        self.logger.info("resumed from %s at epoch %d", path, self.start_epoch)

    def _save(self, epoch: int, is_best: bool) -> None:
        """The end-of-epoch checkpoints (main process): best, then periodic or, after the last epoch, final."""
        out_dir, state = self.cfg.OUTPUT_DIR, self.state_dict(epoch)
        if is_best:
            save_state(os.path.join(out_dir, BEST_CHECKPOINT), state)  # not a resume point: no marker update
        if epoch < self.cfg.SOLVER.EPOCHS:
            save_checkpoint(os.path.join(out_dir, periodic_checkpoint_name(epoch * self.iters_per_epoch)), state)
            prune_checkpoints(out_dir, self.cfg.SOLVER.CHECKPOINT_KEEP)
            return
        save_checkpoint(os.path.join(out_dir, FINAL_CHECKPOINT), state)
        backbone = os.path.join(out_dir, "backbone_final.pth")
        export_backbone(state, backbone, use_ema=self.cfg.EXPORT == "ema")
        self.logger.info("wrote %s (%s weights)", backbone, self.cfg.EXPORT)

    # ------------------------------------------------------------------ loop
    def train_one_epoch(self, epoch: int, t_run: float, iters_done_at_start: int) -> dict[str, float]:
        cfg, model = self.cfg, self.train_model
        model.train()
        loss_sum, seen, t0 = 0.0, 0, time.perf_counter()
        t_data, t_last = 0.0, t0
        # A bar on a terminal; elsewhere the LOG_PERIOD lines below are the progress report.
        batches = progress(self.train_loader, f"epoch {epoch + 1}/{cfg.SOLVER.EPOCHS}", unit="batch",
                           every_s=float("inf"))
        for it, (images, target) in enumerate(batches):
            t_data += time.perf_counter() - t_last
            images = images.to(self.device, non_blocking=True)
            target = target.to(self.device, non_blocking=True)
            if cfg.CHANNELS_LAST:
                images = images.contiguous(memory_format=torch.channels_last)
            if self.mixup is not None:
                images, target = self.mixup(images, target)
            with autocast(self.device, self.amp_dtype):
                logits = model(images)
                if self.teacher is not None:
                    with torch.no_grad():
                        teacher_logits = self.teacher(images)
                    loss = self.distill(logits, target, teacher_logits)
                else:
                    loss = self.criterion(logits, target)
            if not torch.isfinite(loss):
                raise NonFiniteError(f"loss is {loss.item()} at epoch {epoch + 1} iteration {it + 1}; last good "
                                     f"checkpoint: {find_last_checkpoint(cfg.OUTPUT_DIR) or 'none'}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            clip_gradients(self.net, cfg.SOLVER.CLIP_GRAD_NORM, scaler=self.scaler, optimizer=self.optimizer)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.net)
            loss_sum += loss.item() * images.shape[0]
            seen += images.shape[0]
            t_last = time.perf_counter()
            if (it + 1) % cfg.LOG_PERIOD == 0 or it + 1 == self.iters_per_epoch:
                done = iters_done_at_start + it + 1
                per_iter = (t_last - t_run) / max(done - self._iters_resumed, 1)
                eta = format_eta(per_iter * (self.max_iter - done))
                lr = self.optimizer.param_groups[0]["lr"]
                self.logger.info(
                    "epoch %d/%d iter %d/%d  loss %.4f (avg %.4f)  lr %.5f  %.0f img/s  data %.0f%%  eta %s",
                    epoch + 1, cfg.SOLVER.EPOCHS, it + 1, self.iters_per_epoch, loss.item(), loss_sum / seen,
                    lr, seen * self.world_size / (t_last - t0), 100.0 * t_data / (t_last - t0), eta,
                )
                self.events.scalars(done, {"loss": loss_sum / seen, "lr": lr})
        stats = reduce_mean_dict({"loss": loss_sum / max(seen, 1)}, self.device)
        stats["images_per_s"] = seen * self.world_size / (time.perf_counter() - t0)
        return stats

    def evaluate(self) -> dict[str, float | None]:
        cl = self.cfg.CHANNELS_LAST
        raw = evaluate_classifier(self.eval_model, self.val_loader, self.device, self.amp_dtype, cl)
        out: dict[str, float | None] = {"top1": raw["top1"], "top5": raw["top5"], "val_loss": raw["loss"],
                                        "ema_top1": None, "ema_top5": None}
        if self.ema is not None:
            ema = evaluate_classifier(self.ema.module, self.val_loader, self.device, self.amp_dtype, cl)
            out.update(ema_top1=ema["top1"], ema_top5=ema["top5"])
        return out

    def train(self) -> dict[str, Any]:
        """Run the remaining epochs; returns the metrics of the last one."""
        cfg = self.cfg
        self.logger.info(
            "%s: %d train / %d val images, %d classes; global batch %d, lr %.4g, %d iterations per epoch",
            cfg.MODEL.NAME, len(self.train_set), len(self.val_set), self.train_set.num_classes,
            cfg.SOLVER.IMS_PER_BATCH, self.lr, self.iters_per_epoch,
        )
        t_run = time.perf_counter()
        self._iters_resumed = self.start_epoch * self.iters_per_epoch
        metrics: dict[str, Any] = self.history[-1] if self.history else {}
        if self.start_epoch >= cfg.SOLVER.EPOCHS:
            self.logger.info("already at epoch %d of %d: nothing to train", self.start_epoch, cfg.SOLVER.EPOCHS)
        for epoch in range(self.start_epoch, cfg.SOLVER.EPOCHS):
            # Reseeding per epoch is what makes --resume reproduce the uninterrupted curve.
            seed_everything(cfg.SEED + 1000 * epoch + self.rank)
            self.train_loader.sampler.set_epoch(epoch)
            if self.mixup is not None:
                self.mixup.rng = random.Random(cfg.SEED + 1000 * epoch + self.rank)
            stats = self.train_one_epoch(epoch, t_run, epoch * self.iters_per_epoch)
            metrics = {"epoch": epoch + 1, "train_loss": stats["loss"], "train_images_per_s": stats["images_per_s"],
                       **self.evaluate()}
            self.history.append(metrics)
            score = metrics["ema_top1"] if cfg.EXPORT == "ema" else metrics["top1"]
            is_best = score > self.best_top1
            if is_best:
                self.best_top1, self.best_epoch = score, epoch + 1
            ema_txt = "" if metrics["ema_top1"] is None else f"  EMA top-1 {metrics['ema_top1']:.2f} top-5 {metrics['ema_top5']:.2f}"
            self.logger.info("epoch %d/%d  train loss %.4f  val top-1 %.2f top-5 %.2f%s  (best %.2f at epoch %d)",
                             epoch + 1, cfg.SOLVER.EPOCHS, stats["loss"], metrics["top1"], metrics["top5"], ema_txt,
                             self.best_top1, self.best_epoch)
            if self.train_set.num_skipped or self.val_set.num_skipped:
                self.logger.warning("unreadable images skipped so far: %d train, %d val",
                                    self.train_set.num_skipped, self.val_set.num_skipped)
            self.events.scalars((epoch + 1) * self.iters_per_epoch,
                                {k: metrics[k] for k in ("top1", "top5", "ema_top1", "ema_top5", "val_loss")})
            if is_main_process():
                self._save(epoch + 1, is_best)
                self._write_metrics(metrics)
            barrier()
        self.logger.info("training took %s", format_eta(time.perf_counter() - t_run))
        self.events.close()
        if is_main_process():
            draw_curves(cfg.OUTPUT_DIR)
        return metrics

    def _write_metrics(self, metrics: dict[str, Any]) -> None:
        keys = ("top1", "top5", "ema_top1", "ema_top5", "epoch", "train_loss", "val_loss", "train_images_per_s")
        out = {k: metrics[k] for k in keys}
        out.update(best_top1=self.best_top1, best_epoch=self.best_epoch)
        atomic_write_json(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json"), out)
