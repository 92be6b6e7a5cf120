"""The base of the losses on one-channel logits [N,1,H,W] against a map built from the label batch."""
from __future__ import annotations

import abc

import torch
from torch import nn


class BinaryMapLoss(nn.Module, abc.ABC):
    """forward(logits [N,1,H,W], labels [N,H,W]) checks the shapes and calls `compute` in float32.

    The target maps come from convolutions and thresholds on the label values (Sobel, Laplacian), which
    autocast would run in half precision; `compute(logits, labels)` gets float32 logits with autocast off.
    """

    inputs = ("binary",)

    @abc.abstractmethod
    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The scalar loss of float32 logits [N,1,H,W] against the labels [N,H,W]."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[1:2] != (1,) or logits.shape[:1] + logits.shape[2:] != target.shape:
            raise ValueError(
                f"{type(self).__name__}: one-channel logits {tuple(logits.shape)} do not match labels {tuple(target.shape)}"
            )
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.compute(logits.float(), target)
