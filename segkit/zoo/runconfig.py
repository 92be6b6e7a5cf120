"""The config a run uses when it is handed weights: the weights carry one, and an explicit config must agree.

segkit checkpoints carry their merged config (YAML under 'config'); a zoo entry names its config and the
overrides of its published protocol; an official file is matched to its zoo entry (or its format's config).
`--config-file` still wins; a config that builds another model than the weights were trained as (model,
variant, backbone, class count) is refused, naming each difference. Fine-tuning may change the class count.
"""
from __future__ import annotations

import os
from typing import Sequence

from yacs.config import CfgNode

from ..config import ConfigError, load_cfg, load_cfg_text
from ..utils.checkpoint import CheckpointError, load_checkpoint
from ..utils.onnx_meta import CONFIG_KEY, onnx_metadata
from .entries import ZooEntry, get_entry
from .hub import is_hub_spec

# segkit's configs/ folder beside the package (a checkout or an editable install).
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")

# The keys that decide which network the weights belong to.
STRUCTURE_KEYS = ("MODEL.NAME", "MODEL.VARIANT", "MODEL.BACKBONE.NAME", "MODEL.NUM_CLASSES")
# An ONNX file takes its input normalised outside the graph: a config normalising otherwise feeds it wrong.
ONNX_KEYS = (*STRUCTURE_KEYS, "INPUT.MEAN", "INPUT.STD")


def entry_cfg(entry: ZooEntry, opts: Sequence[str] = ()) -> CfgNode:
    """The config the entry runs with: its file, its protocol overrides, then `opts`."""
    return _configs_file(entry.config, f"zoo:{entry.name}", [*entry.opts, *opts])


def _configs_file(relative: str, who: str, opts: Sequence[str]) -> CfgNode:
    path = os.path.join(CONFIGS_DIR, relative)
    if not os.path.isfile(path):
        raise ConfigError(f"{who} runs with configs/{relative}, which is not in {CONFIGS_DIR} "
                          "(segkit's configs/ folder: install segkit from a checkout, or give --config-file)")
    return load_cfg(path, list(opts))


def carried_cfg(weights: str, opts: Sequence[str] = ()) -> tuple[CfgNode, str] | None:
    """The config `weights` carry, with `opts` applied, and a phrase saying where it comes from; None for
    weights that carry none (a bare state_dict, an ONNX file segkit did not export, a file of no known format)."""
    from .weights import detect_official, entry_for, is_segkit_checkpoint, zoo_name

    name = zoo_name(weights)
    if name is not None:
        entry = get_entry(name)
        return entry_cfg(entry, opts), f"zoo entry {name} (configs/{entry.config})"
    if is_hub_spec(weights):
        raise ConfigError(f"{weights} names ImageNet backbone weights (MODEL.BACKBONE.WEIGHTS), not a "
                          "segmentation model")
    if weights.endswith(".onnx"):
        text = onnx_metadata(weights).get(CONFIG_KEY)
        where = f"the config saved in {weights}"
        return None if text is None else (load_cfg_text(text, where, opts), where)
    obj = load_checkpoint(weights)
    if is_segkit_checkpoint(obj):
        return load_cfg_text(obj["config"], f"the config saved in {weights}", opts), f"the config saved in {weights}"
    detection = detect_official(obj)
    if detection is None:
        return None
    entry = entry_for(detection, weights)
    if entry is not None:
        return entry_cfg(entry, opts), f"zoo entry {entry.name} (an official {detection.format.name} file)"
    cfg = _configs_file(detection.format.config, weights, opts)
    if cfg.MODEL.NUM_CLASSES != detection.num_classes:
        raise ConfigError(f"{weights} is an official {detection.format.name} checkpoint with {detection.num_classes} "
                          f"classes; configs/{detection.format.config} has {cfg.MODEL.NUM_CLASSES}: give --config-file "
                          "with the dataset it was trained on")
    return cfg, f"configs/{detection.format.config} (an official {detection.format.name} file)"


def resolve_config(config_file: str | None, weights: str | None, opts: Sequence[str] = (),
                   finetune: bool = False) -> CfgNode:
    """The config of a tool run: `config_file` (+ `opts`) when given, checked against the config `weights`
    carry; else the one the weights carry (+ `opts`). `finetune` lets the class count differ."""
    if config_file:
        cfg = load_cfg(config_file, list(opts))
        try:
            found = carried_cfg(weights) if weights else None
        except (CheckpointError, FileNotFoundError, ConfigError):
            # Unreadable weights, or a carried config this segkit cannot read (a classifier's, an older
            # version's): nothing to compare with; the load names what is wrong, once the tool's log is open.
            found = None
        if found is not None:
            carried, source = found
            allowed = ("MODEL.NUM_CLASSES",) if finetune else ()
            keys = ONNX_KEYS if weights.endswith(".onnx") else STRUCTURE_KEYS
            differences = [f"{key} {_get(cfg, key)!r} (weights: {_get(carried, key)!r})" for key in keys
                           if key not in allowed and _get(cfg, key) != _get(carried, key)]
            if differences:
                raise ConfigError(f"--config-file {config_file} builds another model than {weights} holds (its "
                                  f"config: {source}): {', '.join(differences)}; drop --config-file to run with "
                                  "the weights' own config")
        return cfg
    if not weights:
        raise ConfigError("give --config-file, or --weights that carry their config (a segkit checkpoint or zoo:NAME)")
    found = carried_cfg(weights, opts)
    if found is None:
        raise ConfigError(f"{weights} carries no config (a bare state_dict, an ONNX file not exported by "
                          "tools/export_onnx.py, or an unknown format): give --config-file")
    return found[0]


def _get(cfg: CfgNode, key: str) -> object:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node
