"""Entry points that turn a config into a model."""
from __future__ import annotations

import logging

from torch import nn
from yacs.config import CfgNode

from ..utils.checkpoint import load_weights
from .backbones import FAMILIES
from .classifier import Classifier, create_classifier
from .segmentors import SEGMENTORS

logger = logging.getLogger("segkit")


def build_model(cfg: CfgNode) -> nn.Module:
    """The segmentor named by MODEL.NAME, freshly initialised: the caller loads weights (`load_initial_weights`)."""
    name = cfg.MODEL.NAME
    if name not in SEGMENTORS:
        raise KeyError(f"unknown MODEL.NAME '{name}'; available: {', '.join(sorted(SEGMENTORS))}")
    model = SEGMENTORS[name](cfg)
    if cfg.MODEL.OUTPUT_ALIGN_CORNERS is not None and not getattr(model, "reads_output_align_corners", False):
        raise ValueError(f"MODEL.OUTPUT_ALIGN_CORNERS is set but model '{name}' does not read it; "
                         "its last resize follows MODEL.ALIGN_CORNERS")
    return model


def load_initial_weights(model: nn.Module, cfg: CfgNode) -> nn.Module:
    """Load the training start the config names: MODEL.BACKBONE.WEIGHTS into the backbone, then MODEL.WEIGHTS."""
    name = cfg.MODEL.NAME
    if cfg.MODEL.BACKBONE.WEIGHTS:
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise ValueError(f"MODEL.BACKBONE.WEIGHTS is set but model '{name}' has no zoo backbone to load it into")
        # A backbone export, a converted or pretrained classifier, or another segmentor's checkpoint.
        missing, unexpected = load_weights(
            backbone, cfg.MODEL.BACKBONE.WEIGHTS, what=f"backbone {cfg.MODEL.BACKBONE.NAME}",
            strict=not cfg.MODEL.PARTIAL_WEIGHTS, submodule="backbone",
        )
        logger.info(
            "loaded backbone weights %s: %d missing keys %s, %d unexpected keys %s",
            cfg.MODEL.BACKBONE.WEIGHTS, len(missing), missing[:5], len(unexpected), unexpected[:5],
        )
    if cfg.MODEL.WEIGHTS:
        missing, unexpected = load_weights(model, cfg.MODEL.WEIGHTS, what=f"model {name}",
                                           strict=not cfg.MODEL.PARTIAL_WEIGHTS)
        logger.info("loaded model weights %s: missing %s, unexpected %s", cfg.MODEL.WEIGHTS, missing[:5], unexpected[:5])
    return model


def load_model_for_inference(cfg: CfgNode, weights: str) -> nn.Module:
    """The model of the config with the full `weights` loaded; weights that do not cover it are an error.

    MODEL.WEIGHTS / MODEL.BACKBONE.WEIGHTS are not read: `weights` replaces every parameter anyway, and the
    initial weights a training config names need not exist where the model is evaluated.
    """
    model = build_model(cfg)
    missing, unexpected = load_weights(model, weights, what=f"model {cfg.MODEL.NAME} ({cfg.MODEL.BACKBONE.NAME})",
                                       strict=False)
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
