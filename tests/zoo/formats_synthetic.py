"""Synthetic checkpoints in an official format, made from the format's manifest (no network, no official code)."""
from __future__ import annotations

from typing import Callable

import torch

from segkit.config import load_cfg
from segkit.models import build_model
from segkit.zoo.formats import FORMATS, OfficialFormat, convert_official, detect_format, load_manifest, unwrap


def synthetic_state_dict(record: OfficialFormat, num_classes: int = 19) -> dict[str, torch.Tensor]:
    """Every key of the record's manifest with a tensor of its shape (class dims set to `num_classes`)."""
    manifest = load_manifest(record.manifest)
    sd = {}
    for key, shape in manifest.keys.items():
        if key in manifest.class_dim_keys:
            shape = (num_classes, *shape[1:])
        sd[key] = torch.zeros((), dtype=torch.long) if key.endswith("num_batches_tracked") else torch.rand(shape)
    return sd


def segkit_model(record: OfficialFormat, num_classes: int) -> torch.nn.Module:
    """The segkit model of the record's config with `num_classes` outputs, on the meta device (shapes only)."""
    cfg = load_cfg(f"configs/{record.config}", ["MODEL.NUM_CLASSES", str(num_classes)])
    with torch.device("meta"):
        return build_model(cfg)


def load_through_detection(
    published: dict, expected: OfficialFormat, num_classes: int
) -> dict[str, torch.Tensor]:
    """The file as published -> unwrap -> detect_format (must pick `expected`) -> convert -> strict load."""
    sd = unwrap(published)
    detection = detect_format(sd)
    assert detection.format is expected
    assert detection.num_classes == num_classes
    converted = convert_official(sd, detection)
    segkit_model(expected, num_classes).load_state_dict(converted, strict=True, assign=True)
    return converted


def records(name: str) -> list[OfficialFormat]:
    return [r for r in FORMATS.values() if r.name == name]


Wrapper = Callable[[dict[str, torch.Tensor]], dict]
