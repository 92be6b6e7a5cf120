"""The evaluation protocol behind a published figure, as the official code runs it, and the segkit config that
reproduces it (tests/zoo/test_formats_protocol.py checks each config against its protocol)."""
from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Protocol:
    config: str  # the segkit config (relative to configs/) whose evaluation is the official one
    mean: tuple[float, float, float]  # input normalisation, RGB on a 0..1 scale
    std: tuple[float, float, float]
    scale: float  # single-scale inference at this fraction of the frame
    flip: bool  # flipped views added
    output_align_corners: bool  # the last resize of the logits (to the input, then to the label)
    description: str  # the official evaluation in words, with the file that runs it
