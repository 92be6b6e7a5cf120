"""ImageNet backbones by name: MODEL.BACKBONE.WEIGHTS `timm:<model>` or `torchvision:<weights enum>`.

The weights come through the library's own download function (timm.create_model(pretrained=True), which
fetches from the Hugging Face Hub; torchvision's WeightsEnum.get_state_dict, which checks the published hash)
into that library's cache, and are converted with segkit's exact converters (segkit/models/convert) into a
classifier state_dict whose `backbone.*` part loads into the segmentor's backbone. Both libraries are
imported only here, when such a name is asked for (timm and huggingface_hub: `pip install -e ".[hub]"`;
torchvision is a dependency of segkit itself).
"""
from __future__ import annotations

import importlib
import logging
from typing import Callable

import torch

from ..models.convert import convert_state_dict

logger = logging.getLogger("segkit")

HUB_PREFIXES = ("timm:", "torchvision:")


class HubError(FileNotFoundError):
    """Hub weights that could not be fetched (offline) or named; the message says what to do instead."""


def is_hub_spec(spec: str) -> bool:
    return spec.startswith(HUB_PREFIXES)


def hub_state(spec: str) -> dict[str, torch.Tensor]:
    """The segkit classifier state_dict of `timm:<model>[.<tag>]` or `torchvision:<Enum>.<member>`."""
    library, _, name = spec.partition(":")
    fetch: Callable[[str], tuple[str, dict[str, torch.Tensor]]] = _timm if library == "timm" else _torchvision
    arch, state = fetch(name)
    converted = convert_state_dict(library, arch, state)
    logger.info("%s: %s ImageNet weights converted to segkit '%s' (%d tensors)", spec, library, arch, len(converted))
    return dict(converted)


# Where each library comes from: timm is the "hub" extra, torchvision one of segkit's own requirements.
INSTALL = {"timm": 'pip install -e ".[hub]"', "torchvision": 'pip install -e .'}


def _import(module: str, spec_kind: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise HubError(f"{spec_kind}: weights need the {package} package: {INSTALL[package]}") from None


def _offline(spec: str, err: BaseException, how: str) -> HubError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return HubError(f"could not fetch {spec} ({reason}): offline? On a connected machine {how}, convert it with "
                    "tools/convert_weights.py --backbone-only and set MODEL.BACKBONE.WEIGHTS to the file")


def _timm(name: str) -> tuple[str, dict[str, torch.Tensor]]:
    timm = _import("timm", f"timm:{name}")
    arch = name.split(".", 1)[0]  # "resnet50c.gluon_in1k": the architecture before the pretrained tag
    try:
        model = timm.create_model(name, pretrained=True)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise HubError(f"timm:{name}: timm has no model '{name}'") from None
        raise _offline(f"timm:{name}", e, f"save timm.create_model('{name}', pretrained=True).state_dict()") from None
    except OSError as e:  # huggingface_hub's connection and cache-miss errors are OSErrors
        raise _offline(f"timm:{name}", e, f"save timm.create_model('{name}', pretrained=True).state_dict()") from None
    return arch, model.state_dict()


def _torchvision(name: str) -> tuple[str, dict[str, torch.Tensor]]:
    models = _import("torchvision.models", f"torchvision:{name}")
    try:
        weights = models.get_weight(name)
    except (ValueError, KeyError, AttributeError):
        raise HubError(f"torchvision:{name}: not a torchvision weights enum member "
                       "(e.g. torchvision:ResNet50_Weights.IMAGENET1K_V2)") from None
    archs = [m for m in models.list_models() if models.get_model_weights(m) is type(weights)]
    if not archs:
        raise HubError(f"torchvision:{name}: no torchvision model takes {type(weights).__name__}")
    try:
        state = weights.get_state_dict(progress=True, check_hash=True)  # the hash in the file name
    except OSError as e:  # urllib's URLError is an OSError
        raise _offline(f"torchvision:{name}", e, f"download {weights.url}") from None
    return archs[0], state
