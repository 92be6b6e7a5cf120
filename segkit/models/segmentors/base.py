"""What every segmentor promises the trainer, the loss and the optimizer."""
from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F
from yacs.config import CfgNode


def resize_logits(x: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of logits to `size` (H, W); a no-op when already there."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


def output_align_corners(cfg: CfgNode) -> bool:
    """align_corners of a model's last resize of its logits to the input size: MODEL.OUTPUT_ALIGN_CORNERS, or
    MODEL.ALIGN_CORNERS where that is None (the official pipelines of PIDNet resize there with True, inside with False)."""
    value = cfg.MODEL.OUTPUT_ALIGN_CORNERS
    return bool(cfg.MODEL.ALIGN_CORNERS if value is None else value)


# The MODEL.BACKBONE keys that `backbone_from_cfg` passes to a zoo backbone, and the weights `load_initial_weights`
# loads into it: read by every model built on one.
ZOO_BACKBONE_KEYS = frozenset({"MODEL.BACKBONE.NAME", "MODEL.BACKBONE.WEIGHTS", "MODEL.BACKBONE.OUTPUT_STRIDE",
                               "MODEL.BACKBONE.FROZEN_STAGES", "MODEL.BACKBONE.DROP_PATH_RATE"})


class Segmentor(nn.Module):
    """Base class of segmentation models.

    forward(images [N,3,H,W]) returns logits [N,C,H,W] at the input size in eval mode, and
    (logits, OrderedDict(aux_name -> logits [N,C,H,W], or [N,1,H,W] for a binary head such as a boundary
    or detail head)) in train mode, aux heads in the order
    of `aux_names`, which is also the order of LOSS.AUX_WEIGHTS.
    `head_names` names the attributes that get SOLVER.HEAD_LR_MULT; a model that stands on a
    zoo backbone keeps it as `self.backbone` so MODEL.BACKBONE.WEIGHTS can be loaded into it.

    The losses are the model's to declare, by name in segkit.losses.LOSSES: `aux_losses` maps an aux
    head to its loss (heads not listed get LOSS.AUX_NAME), and `joint_losses` maps a further term's name
    to (loss name, the outputs it takes: "main" or aux names, weight), for a loss that needs several outputs.
    Aux heads are attributes named as in `aux_names`, so that they can be counted and left out for deployment.
    """

    aux_names: tuple[str, ...] = ()
    # The model-specific keys (build.MODEL_SPECIFIC_KEYS) the builder passes to this model: build_model refuses
    # any other of them set away from its default, since this model would silently ignore it. A model whose
    # keys depend on another key (DeepLabV3+'s aux head) extends it per instance, as it does `aux_names`.
    reads: frozenset[str] = frozenset()
    default_aux_weights: tuple[float, ...] = ()
    head_names: tuple[str, ...] = ()
    aux_losses: Mapping[str, str] = MappingProxyType({})
    joint_losses: Mapping[str, tuple[str, tuple[str, ...], float]] = MappingProxyType({})

    def head_modules(self) -> list[nn.Module]:
        return [getattr(self, n) for n in self.head_names]

    def outputs(
        self, logits: torch.Tensor, aux: "OrderedDict[str, torch.Tensor]"
    ) -> torch.Tensor | tuple[torch.Tensor, "OrderedDict[str, torch.Tensor]"]:
        """Return the forward result the contract asks for in the current mode."""
        return (logits, aux) if self.training else logits
