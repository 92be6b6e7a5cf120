"""CoinCheung/BiSeNet's own BiSeNetV1 and BiSeNetV2, for `bench_models.py --reference` (their eager forward pass
timed in the same round-robin as segkit's runtimes). Nothing of that repository is copied here: point
COINCHEUNG_BISENET at a checkout of https://github.com/CoinCheung/BiSeNet.

    COINCHEUNG_BISENET=/path/to/BiSeNet python benchmarks/bench_models.py --configs bisenetv1_r18 bisenetv2 \\
        --sizes 512x1024 --reference benchmarks/references/coincheung_bisenet.py

Their constructors download ImageNet backbone weights; speed does not depend on weights, so that step is
skipped and the weights stay as initialised. aux_mode "eval": the logits only, as their demo and evaluation run.
"""
from __future__ import annotations

import importlib
import os
import sys

from torch import nn

TITLE = "CoinCheung/BiSeNet eager"


def _models():
    root = os.environ.get("COINCHEUNG_BISENET")
    if not root or not os.path.isdir(os.path.join(root, "lib", "models")):
        raise SystemExit(f"error: COINCHEUNG_BISENET={root!r} is not a checkout of CoinCheung/BiSeNet (no lib/models)")
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("lib.models.resnet"), importlib.import_module("lib.models")


def _bisenetv1() -> nn.Module:
    resnet, models = _models()
    resnet.Resnet18.init_weight = lambda self: None  # the ImageNet download
    return models.BiSeNetV1(19, aux_mode="eval").eval()


def _bisenetv2() -> nn.Module:
    _, models = _models()
    models.BiSeNetV2.load_pretrain = lambda self: None  # the backbone download
    return models.BiSeNetV2(19, aux_mode="eval").eval()


MODELS = {"bisenetv1_r18": _bisenetv1, "bisenetv2": _bisenetv2}
