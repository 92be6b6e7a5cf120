"""segkit: semantic segmentation of street scenes in PyTorch."""

__version__ = "0.1.0"
