"""Published weights by name: the zoo of official checkpoints, and every other form of weights segkit takes.

    zoo:NAME                       an entry of ENTRIES (python tools/zoo.py list), fetched into the segkit cache
    a checkpoint path              segkit's own, or an official file (PIDNet, DDRNet, STDC, CoinCheung, mmseg)
    timm:<model>, torchvision:<Enum.MEMBER>   ImageNet backbones for MODEL.BACKBONE.WEIGHTS

The layer sits above models and data (it builds models to convert into and reads class names) and below
deploy and engine, which load every weight through `load_model_for_inference` / `load_initial_weights`
here. The official formats themselves are defined in segkit.zoo.formats.
"""
from .download import DownloadError, by_hand, cached_path, download_file, ensure_file
from .entries import ENTRIES, ZooEntry, get_entry
from .hub import HubError, hub_state
from .runconfig import carried_cfg, entry_cfg, resolve_config
from .table import backbone_label, describe_entry, zoo_table
from .weights import (convert_entry_file, entry_state, is_segkit_checkpoint, load_initial_weights,
                      load_model_for_inference, read_weights, weights_reader)

__all__ = ["DownloadError", "ENTRIES", "HubError", "ZooEntry", "backbone_label", "by_hand", "cached_path",
           "carried_cfg", "convert_entry_file", "describe_entry", "download_file", "ensure_file", "entry_cfg",
           "entry_state", "get_entry", "hub_state", "is_segkit_checkpoint", "load_initial_weights",
           "load_model_for_inference", "read_weights", "resolve_config", "weights_reader", "zoo_table"]
