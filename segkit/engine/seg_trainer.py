"""Iteration-based training of a segmentor on the engine (`TrainerBase`): CPU, one GPU, or DDP under torchrun.

`SegTrainer(cfg, resume)` builds data, model and loss from the config; the base builds optimizer and
schedule and `train()` runs SOLVER.MAX_ITER iterations, logging every LOG_PERIOD, evaluating every
TEST.EVAL_PERIOD and at the end, checkpointing every SOLVER.CHECKPOINT_PERIOD and at the end.

Resume is exact on CPU: a checkpoint holds model, optimizer, scheduler, grad scaler and the number of
iterations done; the training loader is rebuilt from that number and every iteration is seeded from
(SEED, rank, iteration) (see the base), so a resumed run continues the uninterrupted one.

AMP: SOLVER.AMP.ENABLED autocasts on CUDA to SOLVER.AMP.DTYPE (float16 with a GradScaler, bfloat16
without one). On CPU the switch is ignored with a warning and training stays float32: CPU autocast is
slower than float32 on most CPUs, so it would only make CPU runs differ from the GPU recipe.

Learning from a teacher (TEACHER.*, SEMI.*; segkit.engine.teacher and segkit.engine.semi):
- the teacher of TEACHER.WEIGHTS is a frozen module of the base (`register_frozen`): never optimised nor saved,
  its fingerprint checked on resume. With TEACHER.LOSSES the distiller runs it on the student's augmented
  batch right after the student's forward pass; the trainable projection of "cwd_feature" is optimised beside
  the student (`extra_trainable`), saved as "distill" and, under DDP, averaged like the student's gradients.
- SEMI.ENABLED adds a batch of DATASET.UNLABELED images per iteration: the teacher (the student's EMA, kept as
  the base's `ema`, so updated after every step and checkpointed as "ema"; or the fixed teacher) labels the
  weak views, and the student's loss on the strong views is added to the total.
- Logged beside the losses: teacher_ms (the teacher's milliseconds per iteration, pseudo-labelling included),
  pseudo_share (share of unlabelled pixels that count: SEMI.THRESHOLD, SEMI.CLASS_KEEP), pseudo_acc /
  pseudo_acc_confident (the teacher's accuracy on the labelled batch, over all pixels / over those that would
  count, every SEMI.ACCURACY_PERIOD iterations).
- DATASET.TRAIN_SUBSET: the labelled and unlabelled lists are written to OUTPUT_DIR (train_labelled.txt,
  train_unlabelled.txt, which keeps the held-back labels for scoring a teacher on those images).
"""
from __future__ import annotations

import os
import time
from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

from ..config import ConfigError
from ..data import (build_dataset, build_train_loader, build_unlabeled_dataset, build_unlabeled_loader,
                    check_num_classes, write_subset_lists)
from ..evaluation import InferenceMode, evaluate_dataset, format_metrics_table, save_metrics
from ..evaluation.report import SUMMARY_METRICS, val_pictures
from ..losses import build_criterion
from ..models import build_model
from ..utils.analysis import min_batch_per_process
from ..utils.comm import all_reduce_sum, broadcast_buffers, is_main_process
from ..utils.checkpoint import SEGMENTOR_KIND, CheckpointError
from .run import convert_sync_batchnorm
from .semi import SemiSupervision
from .teacher import Stopwatch, build_distiller, build_teacher
from .trainer import NonFiniteError, TrainerBase
from ..zoo import backbone_label, load_initial_weights

__all__ = ["NonFiniteError", "SegTrainer"]


class SegTrainer(TrainerBase):
    """Data, segmentor and criterion of one run; `train()` (the base's) runs it and returns the final metrics."""

    CHECKPOINT_KIND = SEGMENTOR_KIND

    def __init__(self, cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> None:
        super().__init__(cfg, resume, overwrite)
        self.logger.info(
            "model %s (%s), %.2fM parameters; %d train / %d val images",
            cfg.MODEL.NAME, backbone_label(cfg, self.model),
            sum(p.numel() for p in self.model.parameters()) / 1e6, len(self.train_set), len(self.val_set),
        )

    def build(self) -> None:
        cfg = self.cfg
        # The mode every evaluation of the run uses, built first: a bad TEST value is an error now, not at the
        # first evaluation after the training it would cost.
        self.eval_mode = InferenceMode.from_config(cfg, device=self.device)
        self.train_set = build_dataset(cfg, cfg.DATASET.TRAIN_SPLIT)  # a demo set generates itself here, once
        self.val_set = build_dataset(cfg, cfg.DATASET.VAL_SPLIT)
        check_num_classes(cfg, self.train_set)
        model = load_initial_weights(build_model(cfg), cfg)
        self._warn_if_from_scratch(model)
        self._check_batch_per_process(model)
        self.model = convert_sync_batchnorm(model.to(self.device), cfg.MODEL.SYNC_BN, cfg.MODEL.NORM, self.run)
        self.criterion = build_criterion(cfg, self.model, class_weights=self._class_weights()).to(self.device)
        self.max_iter, self.warmup_iters = cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS
        self.eval_period, self.checkpoint_period = cfg.TEST.EVAL_PERIOD, cfg.SOLVER.CHECKPOINT_PERIOD
        self._loader = self._unlabeled_loader = None
        self._build_teaching()

    def _build_teaching(self) -> None:
        """Teacher, distiller, semi-supervision and the unlabelled images, as the config asks (see the docstring)."""
        cfg = self.cfg
        teacher = build_teacher(cfg, self.device)
        if teacher is not None:
            self.register_frozen("teacher", teacher)
        # The mean teacher copies the student before the distiller hooks a feature tap into it.
        self.semi = SemiSupervision(cfg, self.model, self.device, teacher=teacher) if cfg.SEMI.ENABLED else None
        self.unlabeled_set = build_unlabeled_dataset(cfg) if self.semi is not None else None
        if self.semi is not None and self.semi.ema is not None:
            self.ema = self.semi.ema  # the base updates it after every step and checkpoints it
        self.distiller = build_distiller(cfg, self.model, self.device, teacher=teacher)
        if self.distiller is not None:
            self.extra_trainable = [self.distiller.criterion]
        self.logged_metrics = (("teacher_ms",) if teacher is not None or self.semi is not None else ()) + (
            ("pseudo_share", "pseudo_acc", "pseudo_acc_confident") if self.semi is not None else ())
        if cfg.DATASET.TRAIN_SUBSET and is_main_process():
            write_subset_lists(cfg.OUTPUT_DIR, self.train_set.samples, self.train_set.subset_rest)

    def wrap_for_training(self, model: nn.Module) -> nn.Module:
        wrapped = super().wrap_for_training(model)
        if self.distiller is not None and self.world_size > 1:  # the projection's gradients, averaged likewise
            self.distiller.criterion.distribute([self.device.index] if self.device.type == "cuda" else None)
        return wrapped

    def next_batch(self, iteration: int) -> dict[str, Any]:
        if self._loader is None:  # built at the first iteration this process trains: a resume starts there
            self._loader = build_train_loader(self.cfg, self.train_set, start_iter=iteration)
        batch = next(self._loader)
        if self.semi is not None:
            if self._unlabeled_loader is None:
                self._unlabeled_loader = build_unlabeled_loader(self.cfg, self.unlabeled_set, start_iter=iteration)
            batch["unlabeled"] = next(self._unlabeled_loader)
        batch["iteration"] = iteration
        return batch

    def close_data(self) -> None:
        self._loader = self._unlabeled_loader = None

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = batch["image"].to(self.device, non_blocking=True)
        labels = batch["label"].to(self.device, non_blocking=True)
        outputs = self.train_model(images)
        loss, parts = self.criterion(outputs, labels)
        out = {"loss": loss, **parts}
        watch = Stopwatch()  # the teacher's time this iteration, distillation and pseudo-labelling together
        if self.distiller is not None:  # right after the labelled forward: its feature tap holds that pass
            taught, taught_parts = self.distiller(outputs, images, labels)
            watch.ms += self.distiller.teacher.last_ms
            out.update(loss=out["loss"] + taught, **taught_parts)
        if self.semi is not None:
            with watch.timing(self.device):
                targets = self.semi.prepare(batch["unlabeled"])
                accuracy = self.semi.pseudo_label_accuracy(images, labels, batch["iteration"])
            unsup, unsup_parts = self.semi.loss(self.train_model(targets.images), targets)
            out.update(loss=out["loss"] + unsup, **unsup_parts, pseudo_share=targets.share, **accuracy)
        if self.logged_metrics:
            out["teacher_ms"] = torch.tensor(watch.ms, device=self.device)
        return out

    def extra_state(self, iteration: int) -> dict[str, Any]:
        return {"distill": self.distiller.criterion.state_dict()} if self.distiller is not None else {}

    def load_extra_state(self, ckpt: dict[str, Any], path: str) -> None:
        if self.distiller is not None:
            if "distill" not in ckpt:
                raise CheckpointError(f"{path} has no 'distill' state (the distillation projection) but this run "
                                      "distils: resume a run with the same TEACHER.LOSSES or start a new one")
            self.distiller.criterion.load_state_dict(ckpt["distill"])

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

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, iteration: int) -> dict[str, Any]:
        """Evaluate on DATASET.VAL_SPLIT, log the table and write OUTPUT_DIR/metrics.json."""
        start = time.perf_counter()
        broadcast_buffers(self.model)  # rank 0's BN statistics, the ones its checkpoints hold, on every shard
        # evaluate_dataset restores the model's train mode afterwards.
        metrics = evaluate_dataset(self.model, self.val_set, self.cfg, self.device, mode=self.eval_mode,
                                   should_stop=self.stop_requested)
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

