"""Distillation losses of segmentation: a teacher's outputs teach the student, beside the student's own losses.

- Pixel-wise KL ("kd"): at every labelled pixel, KL(p_t || p_s) of the class distributions softened by a
  temperature T, scaled by T^2 (Hinton et al.) and averaged over the pixels the label does not ignore.
- Channel-wise distillation ("cwd", Shu et al., ICCV 2021): every channel of a map becomes a distribution over
  the spatial positions (softmax over H*W at temperature T); the loss is T^2 * sum KL(teacher || student) over
  the channels, divided by (channels x batch), as the authors' reference implementation (mmrazor's
  ChannelWiseDivergence) normalises it. "cwd" takes the logits; "cwd_feature" a feature pair, the student's
  side projected to the teacher's channels by a trainable 1x1 conv + BN when the counts differ.

Defaults (segkit/config/defaults.py, TEACHER.*): CWD on logits T = 4 and weight 3, the Cityscapes logit
setting quoted for the paper; the released reference configs (pppppM/mmsegmentation-distiller's
cwd_psp_r101-d8_distill_psp_r18_d8_512_1024_80k_cityscapes.py, open-mmlab/mmrazor's
cwd_logits_pspnet_r101_d8_pspnet_r18_d8_512x1024_cityscapes_80k.py) run tau = 1 and loss_weight = 5:
TEACHER.CWD_TEMPERATURE 1.0 with TEACHER.LOSS_WEIGHTS [5.0] reproduces those.
Pixel-wise KD: T = 1, weight 1, as the CIRKD segmentation-distillation scripts (--kd-temperature 1,
--lambda-kd 1). The teacher's maps are resized to the student's (bilinear, align_corners False) when their
sizes differ; both are computed in float32 under autocast.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import distributed as dist
from torch import nn
from torch.nn import functional as F

from ..models.segmentors.base import resize_logits

# Published weight of each distillation term when TEACHER.LOSS_WEIGHTS is empty (see the module docstring;
# no separate default is published for CWD on segmentation features, so the logit one is used).
DEFAULT_WEIGHTS = {"kd": 1.0, "cwd": 3.0, "cwd_feature": 3.0}


def _check_pair(student: torch.Tensor, teacher: torch.Tensor, what: str) -> torch.Tensor:
    """The teacher map at the student's spatial size; batch and channels must already agree."""
    if student.dim() != 4 or teacher.dim() != 4 or student.shape[:2] != teacher.shape[:2]:
        raise ValueError(f"{what}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} must be "
                         "[N,C,H,W] with the same batch and channels")
    return resize_logits(teacher, tuple(student.shape[-2:]))


def softened_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float, dim: int) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) along `dim`, one value per remaining position, in float32 (autocast
    off); the teacher is detached."""
    with torch.autocast(device_type=student.device.type, enabled=False):
        log_ps = F.log_softmax(student.float() / temperature, dim=dim)
        log_pt = F.log_softmax(teacher.detach().float() / temperature, dim=dim)
        return (log_pt.exp() * (log_pt - log_ps)).sum(dim=dim)


def pixel_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
             valid: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * mean over valid pixels of KL(softmax(t/T) || softmax(s/T)) over the class dimension.

    `valid` [N,H,W] (bool) selects the pixels; none valid gives 0 with a gradient.
    """
    per_pixel = softened_kl(student, _check_pair(student, teacher, "pixel-wise KL"), temperature, dim=1)
    if valid is None:
        return per_pixel.mean() * temperature**2
    w = valid.to(per_pixel.dtype)
    return (per_pixel * w).sum() / w.sum().clamp_min(1.0) * temperature**2


def channel_wise_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 / (N*C) * sum over (n, c) of KL(softmax_hw(t/T) || softmax_hw(s/T))."""
    teacher = _check_pair(student, teacher, "channel-wise distillation")
    n, c = student.shape[:2]
    per_channel = softened_kl(student.flatten(2), teacher.flatten(2), temperature, dim=2)
    return per_channel.sum() * temperature**2 / (n * c)


def _check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise ValueError(f"distillation temperature must be > 0, got {temperature}")
    return float(temperature)


class PixelKL(nn.Module):
    """forward(student logits, teacher logits, labels) -> pixel_kl over the pixels the labels do not ignore."""

    inputs = ("logits", "teacher_logits")

    def __init__(self, temperature: float = 1.0, ignore_index: int = 255) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.ignore_index = int(ignore_index)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, ignore_index={self.ignore_index}"

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != self.ignore_index
        if valid.shape[-2:] != student.shape[-2:]:  # labels at another size than the logits: nearest, as the loss
            valid = F.interpolate(valid[:, None].float(), size=student.shape[-2:], mode="nearest")[:, 0] > 0
        return pixel_kl(student, teacher, self.temperature, valid)


class ChannelWiseDivergence(nn.Module):
    """forward(student map, teacher map, labels) -> channel_wise_divergence (the labels are not used: the
    reference implementation counts every position)."""

    def __init__(self, temperature: float = 4.0, inputs: Sequence[str] = ("logits", "teacher_logits")) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.inputs = tuple(inputs)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, inputs={self.inputs}"

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return channel_wise_divergence(student, teacher, self.temperature)


def feature_connector(student_channels: int, teacher_channels: int) -> nn.Module:
    """The student feature's way to the teacher's channel count: a 1x1 conv + BN where they differ (as mmrazor's
    ConvModuleConnector), else nothing to learn."""
    if student_channels == teacher_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(student_channels, teacher_channels, 1, bias=False),
                         nn.BatchNorm2d(teacher_channels))


class DistillCriterion(nn.Module):
    """criterion(student outputs, teacher logits, labels, student feature, teacher feature) -> (total, parts).

    `terms` maps a registry name to (loss module, weight). Each loss takes what its `inputs` name:
    "logits" (the student's main logits), "teacher_logits", "feature" (the student's feature after
    `connector`) and "teacher_feature". `parts` holds each term's loss before its weight, detached, as
    "loss_<name>"; `total` = sum(weight * term) is what to add to the student's own loss. The connector is
    the only trainable part: it belongs in the optimizer and the checkpoint with the student, and under DDP
    `distribute()` averages its gradients over the processes as DDP does the student's.
    """

    def __init__(self, terms: "dict[str, tuple[nn.Module, float]]", connector: nn.Module | None = None) -> None:
        super().__init__()
        if not terms:
            raise ValueError("a distillation criterion needs at least one term (TEACHER.LOSSES is empty)")
        self.losses = nn.ModuleDict({name: loss for name, (loss, _) in terms.items()})
        self.weights = {name: float(w) for name, (_, w) in terms.items()}
        self.connector = connector if connector is not None else nn.Identity()
        self.__dict__["_connect"] = self.connector  # the callable; not a submodule, so state_dict keys stay put

    def distribute(self, device_ids: "list[int] | None" = None) -> None:
        """Under torch.distributed with several processes, run a trainable connector through DDP, which
        all-reduces its gradients (the connector sits outside the student's DDP wrapper). A no-op otherwise."""
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return
        if any(p.requires_grad for p in self.connector.parameters()):
            self.__dict__["_connect"] = nn.parallel.DistributedDataParallel(self.connector, device_ids=device_ids)

    def forward(self, outputs, teacher_logits: torch.Tensor, target: torch.Tensor,
                student_feature: torch.Tensor | None = None, teacher_feature: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
        available = {"logits": logits, "teacher_logits": teacher_logits, "teacher_feature": teacher_feature,
                     "feature": None if student_feature is None else self._connect(student_feature)}
        total, parts = logits.new_zeros((), dtype=torch.float32), {}
        for name, loss_fn in self.losses.items():
            preds = [available[k] for k in loss_fn.inputs]
            if any(p is None for p in preds):
                raise ValueError(f"distillation term '{name}' takes {list(loss_fn.inputs)}, but no feature pair "
                                 "was captured (TEACHER.STUDENT_FEATURE / TEACHER.TEACHER_FEATURE)")
            loss = loss_fn(*preds, target)
            parts[f"loss_{name}"] = loss.detach()
            total = total + self.weights[name] * loss
        return total, parts
