"""A frozen teacher for the segmentation trainer, and the distillation it drives.

`build_teacher(cfg, device)` builds the teacher of TEACHER.WEIGHTS (a segkit checkpoint, an official file or
zoo:NAME, read through segkit.zoo like every other weights) with TEACHER.CONFIG, or with the config the weights
carry when TEACHER.CONFIG is empty (segkit.zoo.resolve_config: an explicit config must build the same model),
frozen (no parameter requires a gradient) and in eval mode for good: `train()` on it, or on a module holding
it, leaves it in eval mode. Called on the student's augmented batch it runs under no_grad
(inside inference_mode too) and returns its logits and, when TEACHER.TEACHER_FEATURE names a module, that
module's output; it times itself (`last_ms`, milliseconds of the last call, for the log).

`build_distiller(cfg, student, device)` adds the student's side: a `Distiller` whose call
(student outputs, images, labels) runs the teacher and returns (total, parts) of the distillation terms of
TEACHER.LOSSES, for the trainer to add to the student's own losses. Its `criterion` holds the only trainable
part (the 1x1 conv + BN that projects the student feature of "cwd_feature"): optimise and checkpoint it
with the student; the teacher itself belongs to neither.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple

import torch
from torch import nn
from yacs.config import CfgNode

from ..config import ConfigError
from ..losses import build_seg_loss
from ..losses.build import loss_inputs
from ..losses.distill import DEFAULT_WEIGHTS, DistillCriterion, feature_connector
from ..utils.comm import unwrap_model
from ..zoo import get_entry, load_model_for_inference, resolve_config

logger = logging.getLogger("segkit")

ZOO_PREFIX = "zoo:"


class Stopwatch:
    """`with watch.timing(device):` adds the block's wall time (CUDA work included) to `watch.ms`."""

    def __init__(self) -> None:
        self.ms = 0.0

    @contextmanager
    def timing(self, device: torch.device) -> Iterator[None]:
        cuda = device.type == "cuda"
        if cuda:  # the queued work of the caller is not the block's
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        try:
            yield
        finally:
            if cuda:
                torch.cuda.synchronize(device)
            self.ms += (time.perf_counter() - start) * 1000.0


class TeacherOutput(NamedTuple):
    logits: torch.Tensor
    feature: torch.Tensor | None = None


class FeatureTap:
    """Keeps the output of one submodule from the latest forward pass, through a forward hook.

    `spec` is a module path of `model` ("ffm", "context_path.arm16"), optionally with ":key" to take one
    entry of a dict or sequence output ("backbone:c5", "backbone:2").
    """

    def __init__(self, model: nn.Module, spec: str, what: str = "TEACHER.STUDENT_FEATURE") -> None:
        path, _, key = spec.partition(":")
        try:
            module = unwrap_model(model).get_submodule(path)
        except AttributeError as e:
            names = [n for n, _ in unwrap_model(model).named_children()]
            raise ConfigError(f"{what} '{spec}': {type(unwrap_model(model)).__name__} has no module '{path}' "
                              f"(its children: {names})") from e
        self.spec, self.key, self.what = spec, key, what
        self.value: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.key:
            output = output[int(self.key)] if isinstance(output, (list, tuple)) else output[self.key]
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise ValueError(f"{self.what} '{self.spec}' gives {type(output).__name__}, not a feature map [N,C,H,W]"
                             + ("" if self.key else "; name a dict entry with ':key'"))
        self.value = output

    def pop(self) -> torch.Tensor:
        """The captured map, forgotten here so that a stale one is never used twice."""
        if self.value is None:
            raise RuntimeError(f"{self.what} '{self.spec}' captured nothing: did the model run?")
        value, self.value = self.value, None
        return value

    def remove(self) -> None:
        self.handle.remove()


class FrozenTeacher(nn.Module):
    """A model that teaches and never learns: see the module docstring."""

    def __init__(self, model: nn.Module, feature: str = "") -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tap = FeatureTap(model, feature, "TEACHER.TEACHER_FEATURE") if feature else None
        self.last_ms = 0.0
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenTeacher":
        # BN statistics and dropout stay those of the trained teacher, whatever the parent asks.
        return super().train(False)

    def forward(self, images: torch.Tensor) -> TeacherOutput:
        watch = Stopwatch()
        with watch.timing(images.device), torch.no_grad():
            logits = self.model(images)
            feature = self.tap.pop() if self.tap is not None else None
        self.last_ms = watch.ms
        return TeacherOutput(logits, feature)


def check_weights(spec: str, key: str = "TEACHER.WEIGHTS") -> str:
    """`spec` when it names weights segkit.zoo can read: zoo:NAME of a known entry (fetched into the cache when
    first loaded) or an existing file (a segkit checkpoint or an official one); else an error naming `key`."""
    if spec.startswith(ZOO_PREFIX):
        try:
            get_entry(spec[len(ZOO_PREFIX):])
        except KeyError as e:
            raise ConfigError(f"{key} '{spec}': {e.args[0]}") from None
        return spec
    if not os.path.isfile(spec):
        raise ConfigError(f"{key}: checkpoint not found: {spec}")
    return spec


def teacher_cfg(cfg: CfgNode) -> CfgNode:
    """The teacher's config: TEACHER.CONFIG, checked against the config the weights carry, or, when it is empty,
    the carried one (a segkit checkpoint's, a zoo entry's, an official file's zoo entry)."""
    t = cfg.TEACHER
    weights = check_weights(t.WEIGHTS)
    try:
        return resolve_config(t.CONFIG or None, weights)
    except ConfigError as e:
        if t.CONFIG:
            raise ConfigError(f"TEACHER.CONFIG {t.CONFIG} / TEACHER.WEIGHTS {weights}: {e}") from None
        raise ConfigError(f"TEACHER.CONFIG is empty and TEACHER.WEIGHTS {weights} carries no config it can use "
                          f"({e}): name the config the teacher was trained with") from None


def build_teacher(cfg: CfgNode, device: torch.device | str = "cpu") -> FrozenTeacher | None:
    """The frozen teacher of TEACHER.WEIGHTS (+ TEACHER.CONFIG) on `device`, or None when TEACHER.WEIGHTS is empty."""
    t = cfg.TEACHER
    if not t.WEIGHTS:
        if t.CONFIG:
            raise ConfigError(f"TEACHER.CONFIG is {t.CONFIG} but TEACHER.WEIGHTS is empty: a teacher needs its weights")
        return None
    tcfg = teacher_cfg(cfg)
    _check_compatible(cfg, tcfg)
    model = load_model_for_inference(tcfg, t.WEIGHTS).to(device)
    teacher = FrozenTeacher(model, t.TEACHER_FEATURE)
    logger.info("teacher %s (%s) from %s: %.2fM parameters, frozen", tcfg.MODEL.NAME, t.CONFIG or "its own config",
                t.WEIGHTS, sum(p.numel() for p in model.parameters()) / 1e6)
    return teacher


def _check_compatible(cfg: CfgNode, tcfg: CfgNode) -> None:
    """The teacher sees the student's batch and teaches its classes: both must agree."""
    for key in ("MODEL.NUM_CLASSES", "INPUT.MEAN", "INPUT.STD"):
        section, name = key.split(".")
        mine, theirs = cfg[section][name], tcfg[section][name]
        if (list(mine) if isinstance(mine, (list, tuple)) else mine) != (
                list(theirs) if isinstance(theirs, (list, tuple)) else theirs):
            raise ConfigError(f"{key} of the teacher ({cfg.TEACHER.CONFIG or cfg.TEACHER.WEIGHTS}) is {theirs}, the student's is {mine}: "
                              "a teacher must share the student's classes and input normalisation")


class Distiller:
    """distiller(student outputs, images, labels) -> (total, parts): the teacher runs on `images` (the student's
    augmented batch) and TEACHER.LOSSES compare it with the student's main logits (and feature pair)."""

    def __init__(self, teacher: FrozenTeacher, criterion: DistillCriterion, student_tap: FeatureTap | None) -> None:
        self.teacher = teacher
        self.criterion = criterion
        self.student_tap = student_tap

    def __call__(self, outputs: Any, images: torch.Tensor, labels: torch.Tensor,
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        student_feature = self.student_tap.pop() if self.student_tap is not None else None
        taught = self.teacher(images)
        return self.criterion(outputs, taught.logits, labels, student_feature, taught.feature)


def build_distiller(cfg: CfgNode, student: nn.Module, device: torch.device | str = "cpu",
                    teacher: FrozenTeacher | None = None) -> Distiller | None:
    """The Distiller of the config for `student` (before any DDP wrapping), or None without a teacher or with
    TEACHER.LOSSES empty (a teacher that only pseudo-labels, SEMI.TEACHER "fixed"). `teacher`: one already
    built from the config, to share."""
    t = cfg.TEACHER
    names = list(t.LOSSES)
    if not names:
        if t.LOSS_WEIGHTS:
            raise ConfigError(f"TEACHER.LOSS_WEIGHTS {list(t.LOSS_WEIGHTS)} given but TEACHER.LOSSES is empty")
        return None
    teacher = teacher or build_teacher(cfg, device)
    if teacher is None:
        return None
    weights = list(t.LOSS_WEIGHTS) or [DEFAULT_WEIGHTS.get(n, 1.0) for n in names]
    if len(weights) != len(names):
        raise ConfigError(f"TEACHER.LOSSES {names} needs one TEACHER.LOSS_WEIGHTS entry each, got {weights}")
    terms = {}
    for name, weight in zip(names, weights):
        loss = build_seg_loss(name, cfg, None, "TEACHER.LOSSES")
        if not {"teacher_logits", "teacher_feature"} & set(loss_inputs(loss)):
            raise ConfigError(f"TEACHER.LOSSES '{name}' is not a distillation loss (it takes {list(loss_inputs(loss))})")
        terms[name] = (loss, float(weight))
    wants_feature = any("feature" in loss_inputs(loss) for loss, _ in terms.values())
    if wants_feature != bool(t.STUDENT_FEATURE and t.TEACHER_FEATURE):
        raise ConfigError("TEACHER.STUDENT_FEATURE and TEACHER.TEACHER_FEATURE name the feature pair of 'cwd_feature': "
                          f"set both exactly when TEACHER.LOSSES has it (LOSSES {names}, STUDENT_FEATURE "
                          f"'{t.STUDENT_FEATURE}', TEACHER_FEATURE '{t.TEACHER_FEATURE}')")
    tap, connector = None, None
    if wants_feature:
        tap = FeatureTap(student, t.STUDENT_FEATURE)
        s_ch, t_ch = _feature_channels(student, teacher, tap, tuple(cfg.INPUT.CROP_SIZE), device)
        connector = feature_connector(s_ch, t_ch)
        logger.info("distilling feature %s (%d channels) -> teacher %s (%d channels)%s", t.STUDENT_FEATURE, s_ch,
                    t.TEACHER_FEATURE, t_ch, " through a 1x1 conv + BN" if s_ch != t_ch else "")
    criterion = DistillCriterion(terms, connector).to(device)
    logger.info("distillation terms: %s", ", ".join(f"{n} x {w:g}" for n, (_, w) in terms.items()))
    return Distiller(teacher, criterion, tap)


def _feature_channels(student: nn.Module, teacher: FrozenTeacher, tap: FeatureTap, crop: tuple[int, int],
                      device: torch.device | str) -> tuple[int, int]:
    """Channels of the student's and the teacher's tapped maps, from one eval-mode pass on a blank crop (eval:
    the student's BN statistics stay untouched)."""
    x = torch.zeros(1, 3, *crop, device=device)
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            student(x)
            s_ch = tap.pop().shape[1]
            t_ch = teacher(x).feature.shape[1]
    finally:
        student.train(was_training)
    return s_ch, t_ch
