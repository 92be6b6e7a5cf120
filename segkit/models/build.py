"""Entry points that turn a config into a model."""
from __future__ import annotations

import logging
from typing import Callable, Mapping

import torch
from torch import nn
from yacs.config import CfgNode

from ..config import get_cfg
from ..utils.checkpoint import load_weights
from .backbones import FAMILIES
from .classifier import Classifier, create_classifier
from .segmentors import SEGMENTORS

logger = logging.getLogger("segkit")


# Keys only some models read; each segmentor declares those it reads in `Segmentor.reads`. A model
# that does not read one would build as if it were unset, so build_model refuses it set away from its default.
MODEL_SPECIFIC_KEYS = (
    "MODEL.OUTPUT_ALIGN_CORNERS",
    "MODEL.VARIANT",
    "MODEL.DROPOUT",
    # Head shapes of the models on a zoo backbone.
    "MODEL.HEAD_CHANNELS",
    "MODEL.AUX_CHANNELS",
    "MODEL.FCN_NUM_CONVS",
    "MODEL.FCN_CONCAT_INPUT",
    "MODEL.PPM_BINS",
    "MODEL.DEEPLAB_STYLE",
    "MODEL.ASPP_RATES",
    "MODEL.ASPP_CHANNELS",
    "MODEL.ASPP_SEPARABLE",
    "MODEL.DECODER_LOW_CHANNELS",
    # The zoo backbone; PIDNet and DDRNet have none, BiSeNetV2 its fixed own.
    "MODEL.BACKBONE.NAME",
    "MODEL.BACKBONE.WEIGHTS",
    "MODEL.BACKBONE.OUTPUT_STRIDE",
    "MODEL.BACKBONE.FROZEN_STAGES",
    "MODEL.BACKBONE.DROP_PATH_RATE",
)


def _value(cfg: CfgNode, key: str) -> object:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def build_model(cfg: CfgNode) -> nn.Module:
    """The segmentor named by MODEL.NAME, freshly initialised: the caller loads weights (`load_initial_weights`).

    A key of MODEL_SPECIFIC_KEYS set away from its default for a model that does not read it is a ValueError.
    """
    name = cfg.MODEL.NAME
    if name not in SEGMENTORS:
        raise KeyError(f"unknown MODEL.NAME '{name}'; available: {', '.join(sorted(SEGMENTORS))}")
    model = SEGMENTORS[name](cfg)
    defaults, reads = get_cfg(), getattr(model, "reads", frozenset())
    for key in MODEL_SPECIFIC_KEYS:
        value, default = _value(cfg, key), _value(defaults, key)
        if key not in reads and value != default:
            raise ValueError(f"{key} {value!r} is set but model '{name}' does not read it; "
                             f"leave it at its default {default!r}")
    return model


# Turns a weights setting (a path, or a name a higher layer resolves, e.g. zoo:NAME) into what `load_weights`
# takes for the module it is loaded into: a path, or a state_dict already read. segkit.zoo supplies the reader
# that knows zoo names, official formats and ImageNet hubs; on its own this layer reads segkit files.
WeightsReader = Callable[[str, nn.Module], "str | Mapping[str, torch.Tensor]"]


def read_segkit_file(spec: str, module: nn.Module) -> str:
    return spec


def load_initial_weights(model: nn.Module, cfg: CfgNode, read: WeightsReader = read_segkit_file) -> nn.Module:
    """Load the training start the config names: MODEL.BACKBONE.WEIGHTS into the backbone, then MODEL.WEIGHTS.

    MODEL.WEIGHTS of another class count (fine-tuning a Cityscapes model on CamVid) loads everything but the
    class layers, which keep their initialisation; a log line names them.
    """
    name = cfg.MODEL.NAME
    if cfg.MODEL.BACKBONE.WEIGHTS:
        # build_model refused the key for a model without a backbone (it is not in their `reads`).
        backbone = model.backbone
        # A backbone export, a converted or pretrained classifier, or another segmentor's checkpoint.
        spec = cfg.MODEL.BACKBONE.WEIGHTS
        missing, unexpected = load_weights(
            backbone, read(spec, backbone), what=f"backbone {cfg.MODEL.BACKBONE.NAME}",
            strict=not cfg.MODEL.PARTIAL_WEIGHTS, submodule="backbone", name=spec,
        )
        logger.info(
            "loaded backbone weights %s: %d missing keys %s, %d unexpected keys %s",
            spec, len(missing), missing[:5], len(unexpected), unexpected[:5],
        )
    if cfg.MODEL.WEIGHTS:
        spec, class_keys = cfg.MODEL.WEIGHTS, class_layer_keys(cfg)
        missing, unexpected = load_weights(model, read(spec, model), what=f"model {name}",
                                           strict=not cfg.MODEL.PARTIAL_WEIGHTS, name=spec, reinit=class_keys)
        fresh = [k for k in class_keys if k in missing]
        if fresh:
            logger.info("MODEL.WEIGHTS %s has another class count than MODEL.NUM_CLASSES %d: the class layers %s "
                        "are re-initialised, everything else is loaded", spec, cfg.MODEL.NUM_CLASSES, fresh)
        logger.info("loaded model weights %s: missing %s, unexpected %s", spec,
                    [k for k in missing if k not in fresh][:5], unexpected[:5])
    return model


def class_layer_keys(cfg: CfgNode) -> list[str]:
    """The state_dict keys of the config's model whose shape follows MODEL.NUM_CLASSES (the class layers),
    found by building the model for two class counts on the meta device (no memory, no initialisation)."""
    other = cfg.clone()
    other.defrost()
    other.MODEL.NUM_CLASSES = cfg.MODEL.NUM_CLASSES + 1
    with torch.device("meta"):
        ours, theirs = build_model(cfg).state_dict(), build_model(other).state_dict()
    return [k for k, v in ours.items() if v.shape != theirs[k].shape]


def load_model_for_inference(cfg: CfgNode, weights: str, read: WeightsReader = read_segkit_file) -> nn.Module:
    """The model of the config with the full `weights` loaded; weights that do not cover it are an error.

    MODEL.WEIGHTS / MODEL.BACKBONE.WEIGHTS are not read: `weights` replaces every parameter anyway, and the
    initial weights a training config names need not exist where the model is evaluated.
    """
    model = build_model(cfg)
    missing, unexpected = load_weights(model, read(weights, model), strict=False, name=weights,
                                       what=f"model {cfg.MODEL.NAME} ({cfg.MODEL.BACKBONE.NAME})")
    if missing:
        raise ValueError(f"{weights} lacks {len(missing)} weights of model {cfg.MODEL.NAME}, e.g. {missing[:5]}")
    if unexpected:
        logger.warning("%s: %d keys not used by the model, e.g. %s", weights, len(unexpected), unexpected[:5])
    return model


def build_classifier(cfg: CfgNode) -> Classifier:
    """The classifier for ImageNet pretraining, from a classification config (segkit.config.get_cls_cfg)."""
    # Only ResNets have the switch; the key is passed when it asks for the non-default, so another family
    # asked for it fails with the key's name rather than silently ignoring it.
    kwargs = {} if cfg.MODEL.ZERO_INIT_LAST else {"zero_init_last": False}
    if kwargs and cfg.MODEL.NAME not in FAMILIES["resnet"].models:
        raise ValueError(f"MODEL.ZERO_INIT_LAST False: {cfg.MODEL.NAME} is not a ResNet, which alone has the switch")
    return create_classifier(
        cfg.MODEL.NAME,
        num_classes=cfg.MODEL.NUM_CLASSES,
        drop_rate=None if cfg.MODEL.DROP_RATE < 0 else cfg.MODEL.DROP_RATE,  # negative: the family default
        drop_path_rate=cfg.MODEL.DROP_PATH_RATE,
        norm=cfg.MODEL.NORM,
        **kwargs,
    )
