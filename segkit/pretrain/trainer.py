"""ImageNet-style classifier training on the engine (`TrainerBase`): epochs of train + val (raw model and EMA),
checkpoints, backbone export.

The base owns the step, checkpoints, resume, seeding, preemption and logging; this subclass brings data,
classifier, loss (label smoothing, mixup/CutMix, distillation from a frozen teacher) and the evaluation
that ends every epoch. An epoch is `iters_per_epoch` = len(train set) // SOLVER.IMS_PER_BATCH iterations of
the shared training stream; every epoch ends with `model_{iteration:07d}.pth` (SOLVER.CHECKPOINT_KEEP of
them kept), `model_best.pth` when val top-1 improved, and the last epoch with `model_final.pth` and
`backbone_final.pth`. A run resumed from any iteration (an epoch end, or a preemption mid-epoch) follows
the uninterrupted run's curve exactly (same data order, augmentation, mixup draws and dropout masks).
"""
from __future__ import annotations

import math
import os
import random
import time
from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

from ..engine.run import convert_sync_batchnorm
from ..engine.trainer import TrainerBase
from ..models.build import build_classifier
from ..models.classifier import create_classifier
from ..solver import ModelEma, peak_lr
from ..utils.checkpoint import load_weights
from ..utils.comm import all_reduce_sum, broadcast_buffers, is_main_process
from ..utils.io import atomic_write_json
from .backbone_weights import CHECKPOINT_KIND, export_backbone
from .data import build_cls_dataset, build_cls_train_loader, build_cls_val_loader, check_cls_config
from .evaluate import evaluate_classifier
from .losses import ClassificationLoss, DistillationLoss
from .mix import Mixup

BEST_CHECKPOINT = "model_best.pth"


class ClsTrainer(TrainerBase):
    """Data, classifier, EMA, loss and per-epoch evaluation of one pretraining run; `train()` is the base's."""

    CHECKPOINT_KIND = CHECKPOINT_KIND

    def __init__(self, cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> None:
        check_cls_config(cfg)  # before the output folder is claimed and the data scanned
        if cfg.EXPORT not in ("raw", "ema"):
            raise ValueError(f"EXPORT must be 'raw' or 'ema', got '{cfg.EXPORT}'")
        if cfg.EXPORT == "ema" and not cfg.EMA.ENABLED:
            raise ValueError("EXPORT is 'ema' but EMA.ENABLED is False")
        super().__init__(cfg, resume, overwrite)
        self.logger.info(
            "%s: %d train / %d val images, %d classes; global batch %d, lr %.4g, %d iterations per epoch",
            cfg.MODEL.NAME, len(self.train_set), len(self.val_set), self.train_set.num_classes,
            cfg.SOLVER.IMS_PER_BATCH, self.lr, self.iters_per_epoch,
        )

    # ------------------------------------------------------------------ what the base asks for
    def build(self) -> None:
        cfg = self.cfg
        self.train_set = build_cls_dataset(cfg, train=True)  # a demo set generates itself here, once
        self.val_set = build_cls_dataset(cfg, train=False, classes=self.train_set.classes)
        self.iters_per_epoch = len(self.train_set) // cfg.SOLVER.IMS_PER_BATCH
        if self.iters_per_epoch == 0:
            raise ValueError(f"{len(self.train_set)} training images give no full batch of SOLVER.IMS_PER_BATCH "
                             f"{cfg.SOLVER.IMS_PER_BATCH}")
        self.val_loader = build_cls_val_loader(cfg, self.val_set, self.device)
        net = convert_sync_batchnorm(build_classifier(cfg), cfg.MODEL.SYNC_BN, cfg.MODEL.NORM, self.run).to(self.device)
        if cfg.CHANNELS_LAST:
            net.to(memory_format=torch.channels_last)
        self.model = net
        self.ema = ModelEma(net, cfg.EMA.DECAY, cfg.EMA.WARMUP) if cfg.EMA.ENABLED else None
        self.lr = peak_lr(cfg)
        self.max_iter = cfg.SOLVER.EPOCHS * self.iters_per_epoch
        self.warmup_iters = min(cfg.SOLVER.WARMUP_EPOCHS * self.iters_per_epoch, self.max_iter)
        self.eval_period = self.checkpoint_period = self.iters_per_epoch  # both at every epoch's end

        a = cfg.AUG
        self.mixup = None
        if a.MIXUP_ALPHA > 0 or a.CUTMIX_ALPHA > 0:
            self.mixup = Mixup(mixup_alpha=a.MIXUP_ALPHA, cutmix_alpha=a.CUTMIX_ALPHA, prob=a.MIX_PROB,
                               switch_prob=a.SWITCH_PROB, label_smoothing=a.LABEL_SMOOTHING,
                               num_classes=cfg.MODEL.NUM_CLASSES)
        self.criterion = ClassificationLoss(label_smoothing=a.LABEL_SMOOTHING)
        self.teacher = self.register_frozen("teacher", self._load_teacher()) if cfg.KD.TEACHER_WEIGHTS else None
        self.distill = (DistillationLoss(self.criterion, alpha=cfg.KD.ALPHA, temperature=cfg.KD.TEMPERATURE,
                                         kind=cfg.KD.KIND) if self.teacher is not None else None)
        self.eval_model = torch.compile(net) if cfg.COMPILE else net
        self.history: list[dict[str, Any]] = []
        self.best_top1, self.best_epoch = -1.0, -1
        # This rank's loss sum and count in the current epoch (after a resume, rank 0's also hold what every
        # rank summed before the stop), and the iterations this process ran in it, which its clock times.
        self._epoch_loss = [0.0, 0]
        self._epoch_iters = 0
        self._epoch_start = time.perf_counter()
        self._loader = None

    def wrap_for_training(self, model: nn.Module) -> nn.Module:
        wrapped = super().wrap_for_training(model)
        return torch.compile(wrapped) if self.cfg.COMPILE else wrapped

    def next_batch(self, iteration: int) -> Any:
        if self._loader is None:  # built at the first iteration this process trains: a resume starts there
            self._epoch_start = time.perf_counter()
            self._loader = build_cls_train_loader(self.cfg, self.train_set, self.device, start_iter=iteration)
        return next(self._loader)

    def close_data(self) -> None:
        self._loader = None

    def compute_losses(self, batch: Any) -> dict[str, torch.Tensor]:
        images, target = batch
        images = images.to(self.device, non_blocking=True)
        target = target.to(self.device, non_blocking=True)
        if self.cfg.CHANNELS_LAST:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.mixup is not None:
            self.mixup.rng.seed(random.getrandbits(64))  # python's RNG was seeded for this iteration
            images, target = self.mixup(images, target)
        logits = self.train_model(images)
        if self.teacher is None:
            return {"loss": self.criterion(logits, target)}
        with torch.no_grad():
            teacher_logits = self.teacher(images)
        return {"loss": self.distill(logits, target, teacher_logits)}

    def run_step(self, batch: Any, iteration: int) -> dict[str, float]:
        losses = super().run_step(batch, iteration)
        self._epoch_loss[0] += losses["loss"]
        self._epoch_loss[1] += 1
        self._epoch_iters += 1
        return losses

    def progress_prefix(self, done: int) -> str:
        return f"epoch {math.ceil(done / self.iters_per_epoch)}/{self.cfg.SOLVER.EPOCHS}  "

    # ------------------------------------------------------------------ checkpoints
    def extra_state(self, iteration: int) -> dict[str, Any]:
        # Every rank saves (TrainerBase.save runs on all of them), so the epoch's loss so far can be summed over
        # ranks: a run resumed mid-epoch then averages what every rank saw before the stop, not rank 0's share.
        return {"epoch": self.start_epoch_of(iteration), "best_top1": self.best_top1,
                "best_epoch": self.best_epoch, "history": self.history, "epoch_loss": self._summed_epoch_loss()}

    def load_extra_state(self, ckpt: dict[str, Any], path: str) -> None:
        self.history = list(ckpt["history"])
        self.best_top1, self.best_epoch = float(ckpt["best_top1"]), int(ckpt["best_epoch"])
        total, count = ckpt["epoch_loss"]
        # The sum over all ranks, held by one of them so that the next sum over ranks counts it once.
        self._epoch_loss = [float(total), int(count)] if is_main_process() else [0.0, 0]

    def _summed_epoch_loss(self) -> list[float | int]:
        totals = torch.tensor(self._epoch_loss, dtype=torch.float64, device=self.device)
        all_reduce_sum(totals)
        return [float(totals[0]), int(totals[1])]

    def after_final_checkpoint(self, state: dict[str, Any]) -> None:
        backbone = os.path.join(self.cfg.OUTPUT_DIR, "backbone_final.pth")
        export_backbone(state, backbone, use_ema=self.cfg.EXPORT == "ema")
        self.logger.info("wrote %s (%s weights)", backbone, self.cfg.EXPORT)

    def start_epoch_of(self, iteration: int) -> int:
        return iteration // self.iters_per_epoch

    @property
    def start_epoch(self) -> int:
        """Epochs completed when this process started training (after a resume)."""
        return self.start_epoch_of(self.start_iter)

    # ------------------------------------------------------------------ evaluation
    def _validate(self) -> dict[str, float | None]:
        cl = self.cfg.CHANNELS_LAST
        # Rank 0's BN statistics (raw and EMA), the ones its checkpoints hold, on every shard: each process
        # otherwise scores its shard with its own running averages, and top-1 mixes them.
        for module in (self.eval_model, *((self.ema.module,) if self.ema is not None else ())):
            broadcast_buffers(module)
        raw = evaluate_classifier(self.eval_model, self.val_loader, self.device, self.amp_dtype, cl,
                                  should_stop=self.stop_requested)
        out: dict[str, float | None] = {"top1": raw["top1"], "top5": raw["top5"], "val_loss": raw["loss"],
                                        "ema_top1": None, "ema_top5": None}
        if self.ema is not None:
            ema = evaluate_classifier(self.ema.module, self.val_loader, self.device, self.amp_dtype, cl,
                                      should_stop=self.stop_requested)
            out.update(ema_top1=ema["top1"], ema_top5=ema["top5"])
        return out

    def evaluate(self, iteration: int) -> dict[str, Any]:
        """The end of an epoch: val top-1/top-5 (raw and EMA), history, model_best.pth, metrics.json."""
        cfg, epoch = self.cfg, self.start_epoch_of(iteration)
        total, count = self._summed_epoch_loss()
        train_loss = total / max(count, 1)
        seconds = time.perf_counter() - self._epoch_start
        images_per_s = self._epoch_iters * cfg.SOLVER.IMS_PER_BATCH / max(seconds, 1e-9)  # the global batch
        metrics = {"epoch": epoch, "train_loss": train_loss, "train_images_per_s": images_per_s, **self._validate()}
        self.history.append(metrics)
        self._epoch_loss, self._epoch_iters, self._epoch_start = [0.0, 0], 0, time.perf_counter()
        score = metrics["ema_top1"] if cfg.EXPORT == "ema" else metrics["top1"]
        is_best = score > self.best_top1
        if is_best:
            self.best_top1, self.best_epoch = score, epoch
        ema_txt = "" if metrics["ema_top1"] is None else f"  EMA top-1 {metrics['ema_top1']:.2f} top-5 {metrics['ema_top5']:.2f}"
        self.logger.info("epoch %d/%d  train loss %.4f  val top-1 %.2f top-5 %.2f%s  (best %.2f at epoch %d)",
                         epoch, cfg.SOLVER.EPOCHS, train_loss, metrics["top1"], metrics["top5"], ema_txt,
                         self.best_top1, self.best_epoch)
        if self.train_set.num_skipped or self.val_set.num_skipped:
            self.logger.warning("unreadable images skipped so far: %d train, %d val",
                                self.train_set.num_skipped, self.val_set.num_skipped)
        self.events.scalars(iteration, {k: metrics[k] for k in ("top1", "top5", "ema_top1", "ema_top5", "val_loss")})
        if is_best:
            self.save(BEST_CHECKPOINT, iteration, marker=False)  # not a resume point: no marker update
        if is_main_process():
            keys = ("top1", "top5", "ema_top1", "ema_top5", "epoch", "train_loss", "val_loss", "train_images_per_s")
            atomic_write_json(os.path.join(cfg.OUTPUT_DIR, "metrics.json"),
                              {**{k: metrics[k] for k in keys}, "best_top1": self.best_top1,
                               "best_epoch": self.best_epoch})
        return metrics

    def final_metrics(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    # ------------------------------------------------------------------ setup helpers
    def _load_teacher(self) -> nn.Module:
        kd = self.cfg.KD
        teacher = create_classifier(kd.TEACHER_NAME or self.cfg.MODEL.NAME, num_classes=self.cfg.MODEL.NUM_CLASSES)
        load_weights(teacher, kd.TEACHER_WEIGHTS, what="teacher classifier", strict=True)
        if self.cfg.CHANNELS_LAST:
            teacher.to(memory_format=torch.channels_last)
        self.logger.info("distilling from %s (%s), T=%.2f alpha=%.2f", kd.TEACHER_WEIGHTS,
                         kd.TEACHER_NAME or self.cfg.MODEL.NAME, kd.TEMPERATURE, kd.ALPHA)
        return teacher
