"""Every form of weights segkit is handed, read into a segkit state_dict: the one place weights are resolved.

    zoo:NAME                      the entry's file from the cache (downloaded when missing), converted
    timm:<model> / torchvision:<Enum.MEMBER>   ImageNet backbone weights (segkit.zoo.hub)
    a path                        segkit's own checkpoints and state_dicts as they are; a checkpoint in an
                                  official format (PIDNet, DDRNet, STDC, CoinCheung's BiSeNet, mmseg) is
                                  recognised from its keys and converted, with one log line naming the format

segkit.models.build loads what this returns (`load_model_for_inference`, `load_initial_weights` below pass
`weights_reader(cfg)` to it), so the rules of a strict load, partial weights and fine-tuning for another
class count are the same for every form.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import torch
from torch import nn
from yacs.config import CfgNode

from .. import models
from ..models.build import WeightsReader
from ..utils.checkpoint import (SEGMENTOR_KIND, CheckpointError, extract_model_state, load_checkpoint, load_weights,
                                model_entries, save_state)
from . import formats
from .download import ensure_file, sha256_of
from .entries import ENTRIES, ZooEntry, get_entry
from .hub import hub_state, is_hub_spec

logger = logging.getLogger("segkit")

ZOO_PREFIX = "zoo:"
StateDict = Mapping[str, torch.Tensor]


def is_segkit_checkpoint(obj: Any) -> bool:
    """A checkpoint segkit wrote (training or tools/zoo.py convert): its weights under 'model', its config as YAML."""
    return isinstance(obj, dict) and isinstance(obj.get("model"), dict) and isinstance(obj.get("config"), str)


def zoo_name(spec: str) -> str | None:
    return spec[len(ZOO_PREFIX):] if spec.startswith(ZOO_PREFIX) else None


def weights_reader(cfg: CfgNode) -> WeightsReader:
    """The reader segkit.models.build loads through, for a model of `cfg`."""
    return lambda spec, module: read_weights(spec, module, cfg)


def load_model_for_inference(cfg: CfgNode, weights: str) -> nn.Module:
    """segkit.models.load_model_for_inference for every form of `weights` (zoo:NAME, official files, segkit's)."""
    return models.load_model_for_inference(cfg, weights, read=weights_reader(cfg))


def load_initial_weights(model: nn.Module, cfg: CfgNode) -> nn.Module:
    """segkit.models.load_initial_weights with MODEL.WEIGHTS and MODEL.BACKBONE.WEIGHTS in every form."""
    return models.load_initial_weights(model, cfg, read=weights_reader(cfg))


def read_weights(spec: str, module: nn.Module, cfg: CfgNode) -> StateDict:
    """The state_dict `spec` names, in segkit's keys, for `module` (a model of `cfg`, or its backbone)."""
    name = zoo_name(spec)
    if name is not None:
        entry = get_entry(name)
        return entry_state(entry, ensure_file(entry), cfg)
    if is_hub_spec(spec):
        if hasattr(module, "backbone"):  # the whole segmentor: these name classifiers, not segmentation models
            raise ValueError(f"{spec} names ImageNet backbone weights: give it as MODEL.BACKBONE.WEIGHTS")
        return hub_state(spec)
    obj = load_checkpoint(spec)
    if is_segkit_checkpoint(obj):
        return extract_model_state(obj)
    # A bare state_dict: an official format when one fits; else segkit's own keys, when they are mostly the
    # module's (a file of another variant then fails the strict load, which names the keys). The formats go
    # first: an official file may share many key names with segkit's model and still need converting.
    try:
        return official_state(obj, spec, cfg)
    except formats.FormatError as e:
        if _overlap(obj, module) >= 0.5:
            return extract_model_state(obj)
        raise CheckpointError(f"{spec} holds neither segkit weights of model {cfg.MODEL.NAME} nor a checkpoint "
                              f"in an official format: {e}") from None


def entry_state(entry: ZooEntry, path: str, cfg: CfgNode) -> StateDict:
    """The segkit state_dict of the entry's file at `path` (the published file, or one tools/zoo.py convert wrote)."""
    obj = load_checkpoint(path)
    if is_segkit_checkpoint(obj):
        return extract_model_state(obj)
    return official_state(obj, path, cfg, entry)


def convert_entry_file(entry: ZooEntry, src: str, out: str) -> StateDict:
    """Write the entry's file `src` (taken by hand, e.g. from Google Drive) as a segkit checkpoint `out` that
    carries the entry's config, in the layout the trainer writes (so `--weights out` works alone), plus the
    entry's name and URL. The converted weights must load strictly into the entry's model first; a file whose
    SHA-256 is not the published one (another release) is a warning, since its keys fit all the same.
    Returns the weights written; a file of no format, or of another, raises FormatError or CheckpointError."""
    from .runconfig import entry_cfg

    cfg = entry_cfg(entry)
    state = entry_state(entry, src, cfg)
    if entry.sha256 and not sha256_of(src).startswith(entry.sha256):
        logger.warning("%s does not have the published SHA-256 prefix %s of %s (another release?); its keys "
                       "fit all the same", src, entry.sha256, entry.filename)
    load_weights(models.build_model(cfg), state, what=f"model {cfg.MODEL.VARIANT or cfg.MODEL.NAME}", name=src)
    save_state(out, {**model_entries(state, cfg, SEGMENTOR_KIND), "zoo": entry.name, "source": entry.url})
    return state


def official_state(obj: Any, name: str, cfg: CfgNode, entry: ZooEntry | None = None) -> dict[str, torch.Tensor]:
    """Convert a published checkpoint: detect its format from the keys (FormatError when none, several or only
    part of one fits) and convert it (the converter also puts the classes in the order of segkit's dataset);
    with `entry`, a file of another format than the entry's is an error."""
    state = _api("unwrap")(obj)
    detection = _api("detect_format")(state)
    found = detection.format
    if entry is not None and found != format_record(entry):
        want = format_record(entry)
        raise CheckpointError(f"{name} is an official {found.name} checkpoint of {found.variant}; zoo:{entry.name} "
                              f"is a {want.name} checkpoint of {want.variant}")
    converted = dict(_api("convert_official")(state, detection))
    logger.info("%s: official %s checkpoint (%s) of %s with %d classes, converted to segkit keys", name, found.name,
                found.source, found.variant, detection.num_classes)
    return converted


def format_record(entry: ZooEntry) -> Any:
    """The official format (segkit.zoo.formats) the entry's file is in."""
    table = _api("FORMATS")
    if entry.format in table:
        return table[entry.format]
    # The record's format name is the format module's choice; the segkit variant after ':' identifies it too.
    variant = entry.format.split(":", 1)[1]
    same = [r for r in table.values() if r.variant == variant]
    if len(same) != 1:
        raise KeyError(f"zoo:{entry.name} is a '{entry.format}' checkpoint, which segkit.zoo.formats does not "
                       f"define (known: {', '.join(sorted(table)) or 'none'})")
    return same[0]


def entry_for(detection: Any, path: str = "") -> ZooEntry | None:
    """The zoo entry of a detected file: same format and class count (it gives the config and protocol);
    among several (STDC's Seg50 and Seg75 share a model), the one whose published file name `path` has."""
    from .runconfig import entry_cfg

    found = []
    for entry in ENTRIES.values():
        try:
            fits = format_record(entry) == detection.format
        except KeyError:
            continue
        if fits and entry_cfg(entry).MODEL.NUM_CLASSES == detection.num_classes:
            found.append(entry)
    named = [e for e in found if e.filename == os.path.basename(path)]
    return (named or found or [None])[0]


def detect_official(obj: Any) -> Any | None:
    """The Detection of an official checkpoint, or None when `obj` fits no official format."""
    try:
        return _api("detect_format")(_api("unwrap")(obj))
    except formats.FormatError:
        return None


def _overlap(obj: Any, module: nn.Module) -> float:
    """The share of the module's keys that `obj` holds under segkit's names (a 'backbone.' prefix stripped)."""
    try:
        state = extract_model_state(obj)
    except TypeError:
        return 0.0
    own = set(module.state_dict())
    keys = set(state) | {k[len("backbone."):] for k in state if k.startswith("backbone.")}
    return len(own & keys) / max(len(own), 1)


def _api(name: str) -> Any:
    # The format modules fill segkit.zoo.formats; without them no file is recognised as official (a FormatError
    # that says so) and segkit's own checkpoints still load.
    if not hasattr(formats, name):
        raise formats.FormatError(f"segkit.zoo.formats defines no '{name}': no official format is available")
    return getattr(formats, name)
