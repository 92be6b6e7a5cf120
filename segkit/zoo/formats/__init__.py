"""Official checkpoint formats: detection from the keys, and conversion into segkit state_dicts.

Public API (used by segkit.zoo and the tools):
    FORMATS: dict[str, OfficialFormat]       every record, by "<name>:<variant>"
    unwrap(obj) -> dict[str, Tensor]           strips the sources' wrappers ({"state_dict", "meta"}, "model.", "module.")
    detect_format(state_dict) -> Detection     the one record whose manifest the keys fit; FormatError otherwise
    convert_official(state_dict, detection) -> dict[str, Tensor]   segkit keys, checked against the manifest first
    PROTOCOLS: dict[str, Protocol]             the official evaluation protocol by zoo entry name, with its config
Each source has a module here exporting RECORDS: list[OfficialFormat] and optionally PROTOCOLS.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping, NamedTuple

import torch

from .base import FormatError, OfficialFormat, StateDict
from .protocol import Protocol

# One module per source; mmseg lands from another branch, so it is imported only where present.
SOURCE_MODULES = ("coincheung", "pidnet", "ddrnet", "stdc", "mmseg")
MAX_LISTED = 5  # keys named per kind of misfit in an error


def _gather() -> tuple[dict[str, OfficialFormat], dict[str, Protocol]]:
    records: dict[str, OfficialFormat] = {}
    protocols: dict[str, Protocol] = {}
    for name in SOURCE_MODULES:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        for record in module.RECORDS:
            key = f"{record.name}:{record.variant}"
            if key in records:
                raise ValueError(f"two official format records are named '{key}'")
            records[key] = record
        protocols.update(getattr(module, "PROTOCOLS", {}))
    return records, protocols


FORMATS, PROTOCOLS = _gather()


@dataclass(frozen=True)
class Detection:
    format: OfficialFormat
    num_classes: int


class Manifest(NamedTuple):
    keys: dict[str, tuple[int, ...]]
    class_dim_keys: frozenset[str]


@lru_cache(maxsize=None)
def load_manifest(file_name: str) -> Manifest:
    """The key -> shape table of an official model (segkit/zoo/manifests/<file_name>)."""
    text = resources.files("segkit.zoo").joinpath("manifests").joinpath(file_name).read_text(encoding="utf-8")
    data = json.loads(text)
    keys = {k: tuple(v) for k, v in data["keys"].items()}
    unknown = [k for k in data["class_dim_keys"] if k not in keys]
    if unknown:
        raise ValueError(f"manifest {file_name}: class_dim_keys not among its keys: {unknown}")
    return Manifest(keys, frozenset(data["class_dim_keys"]))


# Training-only buffers the HRNet-based trainers (PIDNet, DDRNet) save next to "model.": their loss modules'
# class weights, e.g. "sem_loss.criterion.weight"; they are no part of the network.
_LOSS_BUFFER = re.compile(r"\w*loss\.criterion\.weight")


def unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """The bare state_dict of a loaded checkpoint file: inside {"state_dict": ..., "meta": ...} (mmseg) or
    {"state_dict": ...}, without the "model." prefix of the HRNet-based trainers (their loss buffers dropped)
    and without DataParallel's "module."."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise FormatError(f"expected a state_dict (a mapping of names to tensors), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise FormatError(f"not a state_dict: {len(bad)} entries are not name -> tensor, e.g. {bad[:MAX_LISTED]}")
    sd = dict(obj)
    for prefix in ("module.", "model."):
        # A prefix most keys carry is a wrapper: stripped, the trainer's loss buffers beside it dropped, and any
        # other key kept as it is, so that detection names it.
        others = [k for k in sd if not k.startswith(prefix) and not _LOSS_BUFFER.fullmatch(k)]
        if len(sd) - len(others) > len(others) and any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()
                  if k.startswith(prefix) or not _LOSS_BUFFER.fullmatch(k)}
    return sd


def _misfits(sd: StateDict, manifest: Manifest) -> tuple[list[str], list[str], list[str]]:
    """Keys the manifest has and `sd` lacks, keys `sd` has beyond it, and shape mismatches (class dims aside)."""
    # BatchNorm's batch counter is absent from files written before PyTorch 0.4.1 and by some trainers; it
    # matters only for momentum=None, so a file without it still fits (convert_official adds it as 0).
    missing = [k for k in manifest.keys if k not in sd and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in sd if k not in manifest.keys]
    shapes = []
    for k, want in manifest.keys.items():
        if k not in sd:
            continue
        got = tuple(sd[k].shape)
        if k in manifest.class_dim_keys:
            fits = len(got) == len(want) and got[1:] == want[1:] and len(got) > 0 and got[0] > 0
        else:
            fits = got == want
        if not fits:
            free = " (class dim free)" if k in manifest.class_dim_keys else ""
            shapes.append(f"{k}: {got}, expected {want}{free}")
    return missing, unexpected, shapes


def _num_classes(sd: StateDict, manifest: Manifest) -> int:
    counts = {int(sd[k].shape[0]) for k in manifest.class_dim_keys}
    if len(counts) != 1:
        found = {k: int(sd[k].shape[0]) for k in sorted(manifest.class_dim_keys)}
        raise FormatError(f"the class dimensions disagree: {found}")
    return counts.pop()


def _describe(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f", +{len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
            parts.append(f"{label} ({len(items)}): " + ", ".join(items[:MAX_LISTED]) + more)
    return "; ".join(parts)


def detect_format(state_dict: StateDict) -> Detection:
    """The one official format whose manifest `state_dict` (unwrapped) fits in keys and shapes.

    A file that fits none, or only in part, is refused naming the closest format and the keys that did not fit.
    """
    if not FORMATS:
        raise FormatError("no official formats are registered")
    fits, scored = [], []
    for record in FORMATS.values():
        manifest = load_manifest(record.manifest)
        missing, unexpected, shapes = _misfits(state_dict, manifest)
        if not (missing or unexpected or shapes):
            fits.append((record, manifest))
        scored.append((len(missing) + len(unexpected) + len(shapes), record, (missing, unexpected, shapes)))
    if len(fits) > 1:
        names = ", ".join(f"{r.name}:{r.variant}" for r, _ in fits)
        raise FormatError(f"the checkpoint fits several official formats ({names}); their manifests must differ")
    if not fits:
        _, best, misfit = min(scored, key=lambda s: s[0])
        raise FormatError(
            f"the checkpoint ({len(state_dict)} keys) is in no known official format; closest: "
            f"{best.name}:{best.variant} from {best.source}: {_describe(*misfit)}"
        )
    record, manifest = fits[0]
    return Detection(record, _num_classes(state_dict, manifest))


def convert_official(state_dict: StateDict, detection: Detection) -> dict[str, torch.Tensor]:
    """segkit's state_dict for `detection.format.variant` from the official one, after the manifest check."""
    record = detection.format
    misfit = _misfits(state_dict, load_manifest(record.manifest))
    if any(misfit):
        raise FormatError(f"the checkpoint does not fit {record.name}:{record.variant}: {_describe(*misfit)}")
    counters = {k: torch.zeros((), dtype=torch.long) for k in load_manifest(record.manifest).keys
                if k.endswith(".num_batches_tracked") and k not in state_dict}
    return dict(record.convert({**state_dict, **counters}))


__all__ = [
    "FORMATS", "PROTOCOLS", "Detection", "FormatError", "Manifest", "OfficialFormat", "Protocol", "StateDict",
    "convert_official", "detect_format", "load_manifest", "unwrap",
]
