"""Renaming helpers the official-format converters share."""
from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping, Union

import torch

from ...models.convert import rename_keys

Replacement = Union[str, Callable[[re.Match], str]]
Rules = Iterable[tuple[str, Replacement]]

PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"


def convert_with(
    state_dict: Mapping[str, torch.Tensor], rules: Rules, drop: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """Drop the keys matching any pattern of `drop` (training-only or duplicate entries of the official file),
    then rename the rest by the first fully matching rule; a key no rule matches is an error (nothing is kept
    under an official name)."""
    dropped = [re.compile(p) for p in drop]
    kept = {k: v for k, v in state_dict.items() if not any(p.fullmatch(k) for p in dropped)}
    rules = list(rules)
    compiled = [re.compile(p) for p, _ in rules]
    unmatched = [k for k in kept if not any(p.fullmatch(k) for p in compiled)]
    if unmatched:
        raise ValueError(f"no conversion rule for {len(unmatched)} official keys, e.g. {unmatched[:5]}")
    return dict(rename_keys(kept, rules))


def add_bn_counters(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Give every norm that lacks it a num_batches_tracked of 0: in-place ABN layers (STDC-Seg) store only
    weight, bias and running stats; the counter matters only for BatchNorm with momentum=None."""
    out = {}
    for k, v in state_dict.items():
        out[k] = v
        if k.endswith(".running_var"):
            counter = k[: -len("running_var")] + "num_batches_tracked"
            if counter not in state_dict:
                out[counter] = torch.zeros((), dtype=torch.long)
    return out


P = rf"(?P<p>{PARAM[1:-1]})"  # a parameter or buffer name, as the named group p


def conv_bn(conv: str, bn: str, dst: str) -> list[tuple[str, str]]:
    """Rules for one official conv (regex `conv`, weight and optional bias) and its norm (regex `bn`) into
    segkit's ConvBNAct at `dst` (a replacement template: dst.conv.*, dst.bn.*)."""
    return [(rf"{conv}\.(?P<q>weight|bias)", rf"{dst}.conv.\g<q>"), (rf"{bn}\.{P}", rf"{dst}.bn.\g<p>")]


def residual_block(src: str, dst: str, bottleneck: bool) -> list[tuple[str, str]]:
    """Rules for a torchvision-style residual block (conv1/bn1 .. convN/bnN, downsample.0/1) at regex `src`
    into segkit's DDRNet/PIDNet BasicBlock (conv1, conv2, shortcut) or Bottleneck (body.0-2, shortcut)."""
    layers = ["body.0", "body.1", "body.2"] if bottleneck else ["conv1", "conv2"]
    rules = []
    for i, layer in enumerate(layers, start=1):
        rules += conv_bn(rf"{src}\.conv{i}", rf"{src}\.bn{i}", f"{dst}.{layer}")
    return rules + conv_bn(rf"{src}\.downsample\.0", rf"{src}\.downsample\.1", f"{dst}.shortcut")


def preact(src: str, dst: str, norm_index: int = 0, conv_index: int = 2) -> list[tuple[str, str]]:
    """Rules for a norm-ReLU-conv unit kept as a Sequential (same indices on both sides unless given)."""
    return [(rf"{src}\.{norm_index}\.{P}", rf"{dst}.0.\g<p>"), (rf"{src}\.{conv_index}\.weight", rf"{dst}.2.weight")]


def ddr_head(src: str, dst: str) -> list[tuple[str, str]]:
    """The HRNet-style segmenthead (bn1, conv1, bn2, conv2 with bias) into segkit's DDRHead."""
    return [
        (rf"{src}\.bn1\.{P}", rf"{dst}.conv.0.\g<p>"), (rf"{src}\.conv1\.weight", rf"{dst}.conv.2.weight"),
        (rf"{src}\.bn2\.{P}", rf"{dst}.classifier.0.\g<p>"),
        (rf"{src}\.conv2\.(?P<q>weight|bias)", rf"{dst}.classifier.2.\g<q>"),
    ]


def pyramid_pooling(src: str, dst: str, parallel: bool) -> list[tuple[str, str]]:
    """DAPPM (sequential process1-4) or PAPPM (one grouped scale_process) of DDRNet/PIDNet into segkit's
    pooling module: scale1-4 become the 0-based list scales (pool, norm, ReLU, conv: same indices)."""
    rules: list[tuple[str, Replacement]] = [
        (rf"{src}\.scale(?P<k>[1-4])\.(?P<i>[13])\.{P}",
         lambda m: f"{dst}.scales.{int(m.group('k')) - 1}.{m.group('i')}.{m.group('p')}")
    ]
    rules += preact(rf"{src}\.scale0", f"{dst}.scale0") + preact(rf"{src}\.compression", f"{dst}.compression")
    rules += preact(rf"{src}\.shortcut", f"{dst}.shortcut")
    if parallel:
        rules += preact(rf"{src}\.scale_process", f"{dst}.process")
    else:
        rules += [
            (rf"{src}\.process(?P<k>[1-4])\.(?P<i>[02])\.{P}",
             lambda m: f"{dst}.process.{int(m.group('k')) - 1}.{m.group('i')}.{m.group('p')}")
        ]
    return rules
