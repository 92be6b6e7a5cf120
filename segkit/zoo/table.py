"""What `python tools/zoo.py list` and `show` print: the entries with their model, figure, size and licence."""
from __future__ import annotations

import os

import torch
from tabulate import tabulate
from torch import nn
from yacs.config import CfgNode

from ..data import dataset_classes
from ..models import build_model
from .download import cached_path
from .entries import ENTRIES, ZooEntry
from .runconfig import entry_cfg


def backbone_label(cfg: CfgNode, model: nn.Module) -> str:
    """What a log line or report puts beside MODEL.NAME: the backbone of a model built on one, else its variant
    (PIDNet-S, DDRNet-23-slim), else "own stem" (a network with its own feature extractor)."""
    return cfg.MODEL.BACKBONE.NAME if hasattr(model, "backbone") else cfg.MODEL.VARIANT or "own stem"


HEADERS = ("name", "model", "dataset", "published mIoU", "protocol", "params (M)", "licence", "cached")


def entry_row(entry: ZooEntry) -> tuple:
    """One line of the table; the parameters are counted on the segkit model the entry runs (all heads)."""
    cfg = entry_cfg(entry)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        params = sum(p.numel() for p in build_model(cfg).parameters())
    backbone = "" if cfg.MODEL.VARIANT else f" ({cfg.MODEL.BACKBONE.NAME})"
    return (entry.name, f"{cfg.MODEL.VARIANT or cfg.MODEL.NAME}{backbone}", cfg.DATASET.NAME,
            "-" if entry.miou is None else f"{entry.miou:.2f}", entry.protocol, f"{params / 1e6:.2f}",
            entry.licence.split(" ", 1)[0], "yes" if os.path.isfile(cached_path(entry)) else "no")


def zoo_table(fmt: str = "simple") -> str:
    """The table of every entry in tabulate's `fmt` ("github" for the README)."""
    return tabulate([entry_row(e) for e in ENTRIES.values()], headers=HEADERS, tablefmt=fmt, disable_numparse=True)


def describe_entry(entry: ZooEntry) -> str:
    """Everything the record says about one entry, its classes (from the dataset its config names) included."""
    cfg = entry_cfg(entry)
    names, palette = dataset_classes(cfg)
    lines = [
        ("config", f"configs/{entry.config}" + (f" {' '.join(entry.opts)}" if entry.opts else "")),
        ("format", entry.format),
        ("file", f"{entry.url}" + ("" if entry.direct else " (a web page: take the file by hand)")),
        ("SHA-256 prefix", entry.sha256 or "none published"),
        ("published mIoU", "none published" if entry.miou is None else f"{entry.miou:.2f}"),
        ("protocol", entry.protocol),
        ("licence", entry.licence),
        ("source", entry.page),
        ("classes", ", ".join(f"{n} {tuple(c)}" for n, c in zip(names, palette))),
        ("cache", cached_path(entry) + (" (present)" if os.path.isfile(cached_path(entry)) else " (absent)")),
    ]
    if entry.note:
        lines.append(("note", entry.note))
    return f"zoo:{entry.name}\n" + tabulate(lines, tablefmt="plain")
