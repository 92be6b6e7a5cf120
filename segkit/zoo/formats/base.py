"""The record of one official checkpoint format, shared by every source's module in this package.

A record says how a published state_dict (after `unwrap`) of one model variant becomes a segkit state_dict.
Detection compares the checkpoint's keys and shapes with the record's manifest: a JSON file in
segkit/zoo/manifests/ listing every key of the official model and its shape, derived from the official
code (facts about the published files; no official code is part of segkit). Shapes that depend on the
number of classes are compared on every dimension but the class dimension, so one manifest serves
Cityscapes, CamVid and any other class count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

StateDict = Mapping[str, torch.Tensor]


class FormatError(ValueError):
    """A checkpoint that fits no official format, fits several, or fits one only in part (the keys are named)."""


@dataclass(frozen=True)
class OfficialFormat:
    name: str  # the format shown in logs, e.g. "pidnet" or "mmseg-fcn"
    source: str  # where such files come from, e.g. "official PIDNet (github.com/XuJiacong/PIDNet)"
    variant: str  # the segkit model the file converts to, e.g. "pidnet_s", "bisenetv1", "fcn_r50_d8"
    config: str  # the segkit config the converted weights run with, relative to configs/ (Cityscapes classes)
    manifest: str  # file name in segkit/zoo/manifests/: {"keys": {key: shape}, "class_dim_keys": [keys whose dim 0 is the class count]}
    convert: Callable[[StateDict], "dict[str, torch.Tensor]"]  # unwrapped official keys -> segkit keys; renaming/reshaping only
