"""ImageNet-style classifier training: epochs of train + val (raw model and EMA), checkpoints, backbone export.

Every epoch reseeds all random generators from (SEED, epoch, rank) and reshuffles with a seeded
DistributedSampler, so a run resumed from the checkpoint of epoch k follows the curve of an
uninterrupted run exactly (same data order, augmentation, mixup draws and dropout masks).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from yacs.config import CfgNode

from ..config import save_cfg
from ..data.cls_transforms import build_cls_transforms
from ..data.demo_cls import demo_cls_exists, make_demo_cls_dataset
from ..data.imagefolder import ImageFolder
from ..data.samplers import InferenceSampler
from ..losses import ClassificationLoss, DistillationLoss, Mixup
from ..models.build import build_classifier
from ..models.classifier import create_classifier
from ..solver import ModelEma, clip_gradients, create_lr_scheduler, create_optimizer, get_param_groups, scale_lr
from ..utils.meters import format_eta
from ..utils.seed import seed_everything
from ..utils.checkpoint import extract_model_state, find_last_checkpoint, load_checkpoint, load_weights, save_checkpoint
from ..utils.comm import all_reduce_sum, barrier, get_rank, get_world_size, is_main_process, reduce_mean_dict

logger = logging.getLogger("segkit")

CHECKPOINT_KIND = "classifier"
_CLASSIFIER_PREFIXES = ("backbone.", "pre_logits.", "fc.")


# ---------------------------------------------------------------------------- data
def build_cls_datasets(cfg: CfgNode) -> tuple[ImageFolder, ImageFolder]:
    """Train and val ImageFolders of DATASET.ROOT (generating the demo set first when asked)."""
    ds = cfg.DATASET
    if ds.GENERATE_DEMO and not demo_cls_exists(ds.ROOT):
        if is_main_process():
            logger.info("generating the demo classification set at %s", ds.ROOT)
            make_demo_cls_dataset(ds.ROOT, ds.DEMO_NUM_CLASSES, ds.DEMO_TRAIN_PER_CLASS, ds.DEMO_VAL_PER_CLASS,
                                  ds.DEMO_SIZE, seed=cfg.SEED)
        barrier()
    train = ImageFolder(os.path.join(ds.ROOT, ds.TRAIN_DIR), build_cls_transforms(cfg, train=True), ds.SKIP_UNREADABLE)
    val = ImageFolder(os.path.join(ds.ROOT, ds.VAL_DIR), build_cls_transforms(cfg, train=False), ds.SKIP_UNREADABLE,
                      classes=train.classes)
    if train.num_classes != cfg.MODEL.NUM_CLASSES:
        raise ValueError(f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES} but {train.root} has {train.num_classes} class folders")
    return train, val


def per_process_batch(cfg: CfgNode) -> int:
    world = get_world_size()
    if cfg.SOLVER.BATCH_SIZE % world:
        raise ValueError(f"SOLVER.BATCH_SIZE {cfg.SOLVER.BATCH_SIZE} is not divisible by the {world} processes")
    return cfg.SOLVER.BATCH_SIZE // world


def build_val_loader(cfg: CfgNode, dataset: ImageFolder) -> DataLoader:
    """This rank's share of val (indices rank::world, no padding: every image counts once over ranks)."""
    sampler = InferenceSampler(len(dataset), get_rank(), get_world_size())
    batch = cfg.DATALOADER.VAL_BATCH_SIZE or per_process_batch(cfg)
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=cfg.DATALOADER.NUM_WORKERS,
                      pin_memory=cfg.DATALOADER.PIN_MEMORY and torch.cuda.is_available())


# ---------------------------------------------------------------------------- evaluation
def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose target is among the k highest logits, per k (k capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == target.view(-1, 1)
    return [int(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, loader: DataLoader, device: torch.device, amp: contextlib.AbstractContextManager | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Top-1 / top-5 (percent) and mean CE loss over the loader, summed over processes."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # correct@1, correct@5, loss sum, count
    for images, target in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        target = target.to(device, non_blocking=True)
        with amp or contextlib.nullcontext():
            logits = model(images)
        c1, c5 = topk_correct(logits, target)
        loss = nn.functional.cross_entropy(logits.float(), target, reduction="sum")
        sums += torch.tensor([c1, c5, float(loss), target.numel()], dtype=torch.float64, device=device)
    all_reduce_sum(sums)
    model.train(was_training)
    n = max(float(sums[3]), 1.0)
    return {"top1": 100.0 * float(sums[0]) / n, "top5": 100.0 * float(sums[1]) / n, "loss": float(sums[2]) / n,
            "count": int(sums[3])}


# ---------------------------------------------------------------------------- export
def classifier_backbone_state(state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The `backbone.*` part of a classifier state_dict, prefix removed; refuses anything else."""
    keys = list(state)
    foreign = [k for k in keys if not k.startswith(_CLASSIFIER_PREFIXES)]
    if "fc.weight" not in state or not any(k.startswith("backbone.") for k in keys) or foreign:
        raise ValueError(
            f"{source} is not a segkit classifier checkpoint (expected only backbone.*, pre_logits.*, fc.* keys "
            f"with fc.weight; got e.g. {(foreign or keys)[:4]})"
        )
    return {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}


def _atomic_save(obj: Any, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export_backbone(checkpoint: str | Mapping[str, Any], out_path: str, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """Write the backbone-only state_dict of a classifier checkpoint (raw weights, or the EMA's) to `out_path`."""
    source = checkpoint if isinstance(checkpoint, str) else "checkpoint"
    obj = load_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source} holds a {type(obj).__name__}, not a classifier checkpoint")
    kind = obj.get("kind")
    if isinstance(kind, str) and kind != CHECKPOINT_KIND:
        raise ValueError(f"{source} is a '{kind}' checkpoint, not a classifier: export its backbone from a pretraining run")
    if use_ema:
        if not isinstance(obj.get("ema"), Mapping):
            raise ValueError(f"{source} has no EMA weights (trained with EMA.ENABLED False?); export the raw model")
        state = extract_model_state(obj["ema"]["module"])
    else:
        state = extract_model_state(obj)
    backbone = classifier_backbone_state(state, source)
    _atomic_save(backbone, out_path)
    return backbone


# ---------------------------------------------------------------------------- training
def _autocast(cfg: CfgNode, device: torch.device) -> contextlib.AbstractContextManager:
    if not (cfg.SOLVER.AMP.ENABLED and device.type == "cuda"):
        return contextlib.nullcontext()
    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16}
    if cfg.SOLVER.AMP.DTYPE not in dtypes:
        raise ValueError(f"SOLVER.AMP.DTYPE must be one of {sorted(dtypes)}, got '{cfg.SOLVER.AMP.DTYPE}'")
    return torch.autocast("cuda", dtype=dtypes[cfg.SOLVER.AMP.DTYPE])


class ClsTrainer:
    """Holds model, EMA, optimiser, schedule and loaders of one run; `train()` runs the remaining epochs."""

    def __init__(self, cfg: CfgNode, device: torch.device, resume: bool = False) -> None:
        if cfg.EXPORT not in ("raw", "ema"):
            raise ValueError(f"EXPORT must be 'raw' or 'ema', got '{cfg.EXPORT}'")
        if cfg.EXPORT == "ema" and not cfg.EMA.ENABLED:
            raise ValueError("EXPORT is 'ema' but EMA.ENABLED is False")
        self.cfg, self.device = cfg, device
        self.rank, self.world = get_rank(), get_world_size()
        seed_everything(cfg.SEED + self.rank, cfg.DETERMINISTIC)
        self.train_set, self.val_set = build_cls_datasets(cfg)
        self.batch = per_process_batch(cfg)
        self.sampler = DistributedSampler(self.train_set, num_replicas=self.world, rank=self.rank, shuffle=True,
                                          seed=cfg.SEED, drop_last=True)
        self.train_loader = DataLoader(
            self.train_set, batch_size=self.batch, sampler=self.sampler, drop_last=True,
            num_workers=cfg.DATALOADER.NUM_WORKERS, pin_memory=cfg.DATALOADER.PIN_MEMORY and device.type == "cuda",
        )
        self.iters_per_epoch = len(self.train_loader)
        if self.iters_per_epoch == 0:
            raise ValueError(f"{len(self.train_set)} training images give no full batch of {self.batch} per process")
        self.val_loader = build_val_loader(cfg, self.val_set)

        net = build_classifier(cfg)
        if cfg.MODEL.SYNC_BN and self.world > 1:
            if device.type == "cuda":
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
            else:
                logger.warning("MODEL.SYNC_BN ignored: torch's SyncBatchNorm runs on GPUs only")
        net.to(device)
        if cfg.CHANNELS_LAST:
            net.to(memory_format=torch.channels_last)
        self.net = net
        self.ema = ModelEma(net, cfg.EMA.DECAY, cfg.EMA.WARMUP) if cfg.EMA.ENABLED else None
        self.lr = scale_lr(cfg.SOLVER.BASE_LR, cfg.SOLVER.BATCH_SIZE)
        groups = get_param_groups(net, cfg.SOLVER.WEIGHT_DECAY, no_decay_1d=True)
        s = cfg.SOLVER
        self.optimizer = create_optimizer(
            s.OPTIMIZER, groups, self.lr, weight_decay=s.WEIGHT_DECAY, momentum=s.MOMENTUM, nesterov=s.NESTEROV,
            eps=s.RMSPROP_EPS if s.OPTIMIZER == "rmsproptf" else s.EPS, betas=tuple(s.BETAS), alpha=s.RMSPROP_ALPHA,
        )
        self.max_iter = s.EPOCHS * self.iters_per_epoch
        self.scheduler = create_lr_scheduler(
            self.optimizer, self.max_iter, schedule="cosine", warmup_iters=min(s.WARMUP_EPOCHS * self.iters_per_epoch,
            self.max_iter), warmup_factor=s.WARMUP_LR, min_lr=s.MIN_LR * self.lr, base_lr=self.lr,
        )
        self.amp = _autocast(cfg, device)
        use_scaler = cfg.SOLVER.AMP.ENABLED and device.type == "cuda" and cfg.SOLVER.AMP.DTYPE == "float16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

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
        if self.world > 1:
            model = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        self.train_model = torch.compile(model) if cfg.COMPILE else model
        self.eval_model = torch.compile(net) if cfg.COMPILE else net

        self.start_epoch, self.history = 0, []
        self.best_top1, self.best_epoch = -1.0, -1
        if resume:
            self._resume()

    # ------------------------------------------------------------------ setup helpers
    def _build_teacher(self) -> nn.Module:
        kd = self.cfg.KD
        teacher = create_classifier(kd.TEACHER_NAME or self.cfg.MODEL.NAME, num_classes=self.cfg.MODEL.NUM_CLASSES)
        load_weights(teacher, kd.TEACHER_WEIGHTS, what="teacher classifier", strict=True)
        teacher.to(self.device).eval().requires_grad_(False)
        if self.cfg.CHANNELS_LAST:
            teacher.to(memory_format=torch.channels_last)
        logger.info("distilling from %s (%s), T=%.2f alpha=%.2f", kd.TEACHER_WEIGHTS, kd.TEACHER_NAME or self.cfg.MODEL.NAME,
                    kd.TEMPERATURE, kd.ALPHA)
        return teacher

    def state_dict(self, epoch: int) -> dict[str, Any]:
        state = {
            "kind": CHECKPOINT_KIND, "model_name": self.cfg.MODEL.NAME, "num_classes": self.cfg.MODEL.NUM_CLASSES,
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": epoch,
            "best_top1": self.best_top1, "best_epoch": self.best_epoch, "history": self.history, "cfg": self.cfg.dump(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def _resume(self) -> None:
        path = find_last_checkpoint(self.cfg.OUTPUT_DIR)
        if path is None:
            logger.info("--resume: no checkpoint in %s, starting from scratch", self.cfg.OUTPUT_DIR)
            return
        ckpt = load_checkpoint(path)
        if ckpt.get("kind") != CHECKPOINT_KIND or ckpt.get("model_name") != self.cfg.MODEL.NAME:
            raise ValueError(f"{path} is not a checkpoint of classifier {self.cfg.MODEL.NAME} "
                             f"(kind {ckpt.get('kind')!r}, model {ckpt.get('model_name')!r})")
        self.net.load_state_dict(ckpt["model"])
        if self.ema is not None:
            if "ema" not in ckpt:
                raise ValueError(f"{path} has no EMA state but EMA.ENABLED is True")
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = int(ckpt["epoch"])
        self.history = list(ckpt.get("history", []))
        self.best_top1, self.best_epoch = float(ckpt.get("best_top1", -1.0)), int(ckpt.get("best_epoch", -1))
        logger.info("resumed from %s at epoch %d", path, self.start_epoch)

    # ------------------------------------------------------------------ loop
    def train_one_epoch(self, epoch: int, t_run: float, iters_done_at_start: int) -> dict[str, float]:
        cfg, model = self.cfg, self.train_model
        model.train()
        loss_sum, seen, t0 = 0.0, 0, time.perf_counter()
        t_data, t_last = 0.0, t0
        for it, (images, target) in enumerate(self.train_loader):
            t_data += time.perf_counter() - t_last
            images = images.to(self.device, non_blocking=True)
            target = target.to(self.device, non_blocking=True)
            if cfg.CHANNELS_LAST:
                images = images.contiguous(memory_format=torch.channels_last)
            if self.mixup is not None:
                images, target = self.mixup(images, target)
            with self.amp:
                logits = model(images)
                if self.teacher is not None:
                    with torch.no_grad():
                        teacher_logits = self.teacher(images)
                    loss = self.distill(logits, target, teacher_logits)
                else:
                    loss = self.criterion(logits, target)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1} iteration {it + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            clip_gradients(self.net.parameters(), cfg.SOLVER.CLIP_GRAD,
                           scaler=self.scaler if self.scaler.is_enabled() else None, optimizer=self.optimizer)
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
                logger.info(
                    "epoch %d/%d iter %d/%d  loss %.4f (avg %.4f)  lr %.5f  %.0f img/s  data %.0f%%  eta %s",
                    epoch + 1, cfg.SOLVER.EPOCHS, it + 1, self.iters_per_epoch, loss.item(), loss_sum / seen,
                    self.optimizer.param_groups[0]["lr"], seen * self.world / (t_last - t0),
                    100.0 * t_data / (t_last - t0), eta,
                )
        stats = reduce_mean_dict({"loss": loss_sum / max(seen, 1)}, self.device)
        stats["images_per_s"] = seen * self.world / (time.perf_counter() - t0)
        return stats

    def evaluate(self) -> dict[str, float | None]:
        raw = evaluate_classifier(self.eval_model, self.val_loader, self.device, self.amp, self.cfg.CHANNELS_LAST)
        out: dict[str, float | None] = {"top1": raw["top1"], "top5": raw["top5"], "val_loss": raw["loss"],
                                        "ema_top1": None, "ema_top5": None}
        if self.ema is not None:
            ema = evaluate_classifier(self.ema.module, self.val_loader, self.device, self.amp, self.cfg.CHANNELS_LAST)
            out.update(ema_top1=ema["top1"], ema_top5=ema["top5"])
        return out

    def train(self) -> dict[str, Any]:
        cfg = self.cfg
        out_dir = cfg.OUTPUT_DIR
        if is_main_process():
            save_cfg(cfg, os.path.join(out_dir, "config.yaml"))
        logger.info("%s: %d train / %d val images, %d classes; global batch %d, lr %.4g, %d iterations per epoch",
                    cfg.MODEL.NAME, len(self.train_set), len(self.val_set), self.train_set.num_classes,
                    cfg.SOLVER.BATCH_SIZE, self.lr, self.iters_per_epoch)
        t_run = time.perf_counter()
        self._iters_resumed = self.start_epoch * self.iters_per_epoch
        metrics: dict[str, Any] = self.history[-1] if self.history else {}
        for epoch in range(self.start_epoch, cfg.SOLVER.EPOCHS):
            # Reseeding per epoch is what makes --resume reproduce the uninterrupted curve.
            seed_everything(cfg.SEED + 1000 * epoch + self.rank)
            self.sampler.set_epoch(epoch)
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
            logger.info("epoch %d/%d  train loss %.4f  val top-1 %.2f top-5 %.2f%s  (best %.2f at epoch %d)",
                        epoch + 1, cfg.SOLVER.EPOCHS, stats["loss"], metrics["top1"], metrics["top5"], ema_txt,
                        self.best_top1, self.best_epoch)
            if self.train_set.num_skipped or self.val_set.num_skipped:
                logger.warning("unreadable images skipped so far: %d train, %d val",
                               self.train_set.num_skipped, self.val_set.num_skipped)
            if is_main_process():
                state = self.state_dict(epoch + 1)
                if is_best:
                    save_checkpoint(os.path.join(out_dir, "model_best.pth"), state)
                save_checkpoint(os.path.join(out_dir, "last.pth"), state)  # last, so the resume marker names it
                self._write_metrics(metrics)
            barrier()
        if is_main_process() and metrics:
            state = self.state_dict(len(self.history))
            _atomic_save(state, os.path.join(out_dir, "model_final.pth"))
            export_backbone(state, os.path.join(out_dir, "backbone_final.pth"), use_ema=cfg.EXPORT == "ema")
            logger.info("wrote %s (%s weights) after %s", os.path.join(out_dir, "backbone_final.pth"), cfg.EXPORT,
                        format_eta(time.perf_counter() - t_run))
        barrier()
        return metrics

    def _write_metrics(self, metrics: dict[str, Any]) -> None:
        keys = ("top1", "top5", "ema_top1", "ema_top5", "epoch", "train_loss", "val_loss", "train_images_per_s")
        out = {k: metrics[k] for k in keys}
        out.update(best_top1=self.best_top1, best_epoch=self.best_epoch)
        tmp = os.path.join(self.cfg.OUTPUT_DIR, "metrics.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
        os.replace(tmp, os.path.join(self.cfg.OUTPUT_DIR, "metrics.json"))


def evaluate_weights(cfg: CfgNode, weights: str, device: torch.device) -> dict[str, float]:
    """Top-1 / top-5 of a classifier checkpoint or state_dict on the config's val set."""
    net = build_classifier(cfg)
    load_weights(net, weights, what=f"classifier {cfg.MODEL.NAME}", strict=True)
    net.to(device)
    if cfg.CHANNELS_LAST:
        net.to(memory_format=torch.channels_last)
    val = ImageFolder(os.path.join(cfg.DATASET.ROOT, cfg.DATASET.VAL_DIR), build_cls_transforms(cfg, train=False),
                      cfg.DATASET.SKIP_UNREADABLE)
    if val.num_classes != cfg.MODEL.NUM_CLASSES:
        raise ValueError(f"MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES} but {val.root} has {val.num_classes} class folders")
    return evaluate_classifier(net, build_val_loader(cfg, val), device, _autocast(cfg, device), cfg.CHANNELS_LAST)
