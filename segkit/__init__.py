"""segkit: semantic segmentation of street scenes in PyTorch."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Predictor", "__version__"]


def __getattr__(name: str):
    # Lazy: `import segkit.config` must not pull in the whole stack (torch, OpenCV, onnxruntime) through
    # the package's top level.
    if name == "Predictor":
        from .deploy.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'segkit' has no attribute {name!r}")
