from .backbones import build_backbone, list_backbones
from .build import (build_classifier, build_model, class_layer_keys, create_classifier, load_initial_weights,
                    load_model_for_inference)

__all__ = ["build_backbone", "list_backbones", "build_model", "build_classifier", "class_layer_keys", "create_classifier",
           "load_initial_weights", "load_model_for_inference"]
