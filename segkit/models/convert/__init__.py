"""Weight conversion from other libraries' state_dicts into segkit classifier state_dicts.

Pure key/tensor manipulation: no torchvision or timm import here, so the library path stays free
of them (tools/convert_weights.py and the tests import them to make source models).

Adding a family's converters: write `segkit/models/convert/<family>.py` exporting

    CONVERTERS: dict[tuple[str, str], Callable[[Mapping[str, Tensor]], dict[str, Tensor]]]

keyed by (source library, model name), e.g. ("timm", "efficientnet_b0"), where the model name is
the segkit registry name the result loads into, and import it in `_converters` below. Each function only
renames/reshapes; `convert_state_dict` then checks the result against `create_classifier(name)` and
raises on any mismatch. `rename_keys` is the shared helper for rule-based renaming.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Callable, Iterable, Mapping

import torch

Converter = Callable[[Mapping[str, torch.Tensor]], "dict[str, torch.Tensor]"]

SOURCES = ("torchvision", "timm")


def _converters() -> dict[tuple[str, str], Converter]:
    """The conversion table of every converter module."""
    # Imported here: the modules use rename_keys from this package.
    from . import efficientnet, resnet, xception

    return {**resnet.CONVERTERS, **efficientnet.CONVERTERS, **xception.CONVERTERS}


def available_conversions() -> list[tuple[str, str]]:
    """Every (source, model name) pair that can be converted."""
    return sorted(_converters())


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]]
) -> "OrderedDict[str, torch.Tensor]":
    """Rename each key by the first (regex, replacement) rule that fully matches it; others keep their name."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state_dict.items():
        new = key
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                new = pattern.sub(repl, key)
                break
        if new in out:
            raise ValueError(f"two source keys map to '{new}' (second is '{key}')")
        out[new] = value
    return out


def check_fits(name: str, state_dict: Mapping[str, torch.Tensor], max_listed: int = 10) -> None:
    """Raise ValueError listing the first missing, unexpected and mis-shaped keys against create_classifier(name)."""
    from ..classifier import create_classifier

    num_classes = state_dict["fc.weight"].shape[0] if "fc.weight" in state_dict else 1000
    with torch.device("meta"):  # shapes only, no memory or init cost
        expected = {k: tuple(v.shape) for k, v in create_classifier(name, num_classes=num_classes).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [f"{k}: got {got[k]}, expected {expected[k]}" for k in expected if k in got and got[k] != expected[k]]
    if missing or unexpected or shapes:
        parts = [f"state_dict does not fit segkit classifier '{name}'"]
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                more = f" (+{len(items) - max_listed} more)" if len(items) > max_listed else ""
                parts.append(f"{label} ({len(items)}): " + ", ".join(items[:max_listed]) + more)
        raise ValueError("; ".join(parts))


def convert_state_dict(
    source: str, name: str, state_dict: Mapping[str, torch.Tensor]
) -> "OrderedDict[str, torch.Tensor]":
    """Convert `source`'s state_dict of model `name` to segkit's classifier state_dict, checked to fit."""
    table = _converters()
    if (source, name) not in table:
        names = sorted(n for s, n in table if s == source)
        raise KeyError(f"no converter for {source} model '{name}'; {source} models: {', '.join(names) or 'none'}")
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        state_dict = state_dict["state_dict"]  # checkpoints that wrap the weights
    converted = OrderedDict(table[(source, name)](state_dict))
    check_fits(name, converted)
    return converted


__all__ = ["SOURCES", "available_conversions", "check_fits", "convert_state_dict", "rename_keys"]
