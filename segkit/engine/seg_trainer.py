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
"""
from __future__ import annotations

import os
import time
from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

from ..config import ConfigError
from ..data import build_dataset, build_train_loader, check_num_classes
from ..evaluation import evaluate_dataset, format_metrics_table, save_metrics
from ..evaluation.report import SUMMARY_METRICS, val_pictures
from ..losses import build_criterion
from ..models import build_model
from ..utils.analysis import min_batch_per_process
from ..utils.comm import all_reduce_sum, broadcast_buffers, is_main_process
from .run import convert_sync_batchnorm
from .trainer import NonFiniteError, TrainerBase
from ..zoo import load_initial_weights

__all__ = ["NonFiniteError", "SegTrainer"]


class SegTrainer(TrainerBase):
    """Data, segmentor and criterion of one run; `train()` (the base's) runs it and returns the final metrics."""

    CHECKPOINT_KIND = "segmentor"

    def __init__(self, cfg: CfgNode, resume: bool = False, overwrite: bool = False) -> None:
        super().__init__(cfg, resume, overwrite)
        self.logger.info(
            "model %s (%s), %.2fM parameters; %d train / %d val images",
            cfg.MODEL.NAME, cfg.MODEL.BACKBONE.NAME if hasattr(self.model, "backbone") else cfg.MODEL.VARIANT or "own stem",
            sum(p.numel() for p in self.model.parameters()) / 1e6, len(self.train_set), len(self.val_set),
        )

    def build(self) -> None:
        cfg = self.cfg
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
        self._loader = None

    def next_batch(self, iteration: int) -> dict[str, Any]:
        if self._loader is None:  # built at the first iteration this process trains: a resume starts there
            self._loader = build_train_loader(self.cfg, self.train_set, start_iter=iteration)
        return next(self._loader)

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = batch["image"].to(self.device, non_blocking=True)
        labels = batch["label"].to(self.device, non_blocking=True)
        outputs = self.train_model(images)
        loss, parts = self.criterion(outputs, labels)
        return {"loss": loss, **parts}

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

