"""Colour jitter of BGR uint8 crops in the three forms the published recipes use (INPUT.JITTER).

- "torchvision": brightness x -> b*x, contrast blends with the image's mean grey, saturation with each pixel's
  luma, factors from [1-x, 1+x]: torchvision's ColorJitter without hue, in a fixed order (torchvision draws
  the order of its steps at random).
- "bisenet": the CoinCheung/BiSeNet reproduction's variant: contrast about the fixed grey 74, saturation
  towards the plain mean of the three channels, each step clipped to uint8 as the reproduction does.
- "mmseg": mmsegmentation's PhotoMetricDistortion: each step with probability 0.5 and clipped to uint8: add a
  brightness offset, scale contrast (before or after the HSV steps, at random), scale the HSV saturation,
  shift the HSV hue.

In "torchvision", brightness, contrast and saturation are affine in the colour vector and compose into one
cv2.transform pass, clipped once at the end rather than after each step (they differ only where an
intermediate step saturates). In "bisenet", brightness and contrast are per-value tables composed into one
cv2.LUT, with the reproduction's clipping between them, then saturation is one cv2.transform: the result is
the reproduction's within 1 level (cv2.transform's 8-bit arithmetic: against the reproduction's own functions on
random images, 4-12% of the values differ by 1 where saturation changes, none where it does not).
"""
from __future__ import annotations

import cv2
import numpy as np

JITTER_STYLES = ("torchvision", "bisenet", "mmseg")

_LUMA_BGR = np.array([0.114, 0.587, 0.299])  # ITU-R 601 luma weights, BGR order
_THIRDS = np.full(3, 1 / 3)
_BISENET_PIVOT = 74.0  # the grey CoinCheung/BiSeNet's contrast table turns about


def jitter_colours(img: np.ndarray, brightness: float, contrast: float, saturation: float,
                   style: str = "torchvision") -> np.ndarray:
    """Brightness, contrast and saturation factors (1 = unchanged) in the "torchvision" or "bisenet" form
    (module docstring)."""
    b, c, s = brightness, contrast, saturation
    if b == c == s == 1.0:
        return img
    if style == "bisenet":
        return _bisenet_jitter(img, b, c, s)
    # The mean grey after brightness; a strided view is as good a blend target at 1/64 of the cost.
    pivot = b * float(img[::8, ::8].reshape(-1, 3).mean(0) @ _LUMA_BGR) if c != 1.0 else 0.0
    m = np.empty((3, 4), dtype=np.float32)
    m[:, :3] = c * b * _saturation_matrix(s, _LUMA_BGR)
    m[:, 3] = (1 - c) * pivot  # the saturation matrix maps a grey vector to itself: the offset stays grey
    return cv2.transform(img, m)


def _saturation_matrix(s: float, grey_w: np.ndarray) -> np.ndarray:
    return s * np.eye(3) + (1 - s) * np.outer(np.ones(3), grey_w)


def _bisenet_jitter(img: np.ndarray, b: float, c: float, s: float) -> np.ndarray:
    # The reproduction's brightness and contrast tables, each clipped and truncated to uint8, composed.
    v = np.arange(256, dtype=np.float64)
    bright = np.clip(v * b, 0, 255).astype(np.uint8)
    table = np.clip(_BISENET_PIVOT + (bright - _BISENET_PIVOT) * c, 0, 255).astype(np.uint8)
    if b != 1.0 or c != 1.0:
        img = cv2.LUT(img, table)
    if s == 1.0:
        return img
    m = np.empty((3, 4), dtype=np.float32)
    m[:, :3] = _saturation_matrix(s, _THIRDS)
    m[:, 3] = -0.4999  # cv2 rounds to the nearest value, the reproduction truncates
    return cv2.transform(img, m)


def _scale_shift_table(alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    # mmseg's float multiply-add, clip and uint8 cast of every value, as a 256-entry table for cv2.LUT.
    return np.clip(np.arange(256, dtype=np.float32) * alpha + beta, 0, 255).astype(np.uint8)


_IDENTITY = np.arange(256, dtype=np.uint8)


def _apply(img: np.ndarray, table: np.ndarray) -> np.ndarray:
    return img if table is _IDENTITY else cv2.LUT(img, table)


def photometric_distortion(img: np.ndarray, brightness: float, contrast: float, saturation: float,
                           hue: float) -> np.ndarray:
    """mmsegmentation's PhotoMetricDistortion on a BGR uint8 image.

    `brightness`: the offset is drawn from [-x, x] * 255 (mmseg: 32/255); `contrast`, `saturation`: factors
    from [1-x, 1+x] (mmseg: 0.5); `hue`: a shift drawn from [-x, x) of a full turn, in OpenCV's 180 hue steps
    (mmseg: 18/180 = 0.1). A zero amount skips its step without a draw.
    """
    # Brightness and contrast map each value through a table; consecutive ones compose into one cv2.LUT pass.
    table = _IDENTITY

    def maybe_contrast(table: np.ndarray) -> np.ndarray:
        if contrast and np.random.randint(2):
            return _scale_shift_table(alpha=np.random.uniform(1 - contrast, 1 + contrast))[table]
        return table

    if brightness and np.random.randint(2):
        table = _scale_shift_table(beta=np.random.uniform(-brightness, brightness) * 255)
    contrast_first = np.random.randint(2) == 1
    if contrast_first:
        table = maybe_contrast(table)
    do_sat = bool(saturation) and np.random.randint(2) == 1
    sat_factor = np.random.uniform(1 - saturation, 1 + saturation) if do_sat else 1.0
    hue_steps = round(hue * 180)
    shift = int(np.random.randint(-hue_steps, hue_steps)) if hue_steps and np.random.randint(2) else 0
    if do_sat or shift:
        img = _apply(img, table)
        table = _IDENTITY
        # One LUT with a table per HSV channel (OpenCV's 8-bit hue: 0..179); splitting the planes costs more.
        tables = np.repeat(_IDENTITY[:, None], 3, axis=1)
        tables[:, 0] = (np.arange(256) + shift) % 180
        tables[:, 1] = _scale_shift_table(alpha=sat_factor)
        img = cv2.cvtColor(cv2.LUT(cv2.cvtColor(img, cv2.COLOR_BGR2HSV), tables.reshape(1, 256, 3)),
                           cv2.COLOR_HSV2BGR)
    if not contrast_first:
        table = maybe_contrast(table)
    return _apply(img, table)
