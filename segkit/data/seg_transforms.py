"""Segmentation transforms on uint8 OpenCV arrays, image and label together.

Images are BGR uint8 HxWx3 (as cv2.imread gives them), labels uint8 HxW of train ids. The output image
is float32 CHW in RGB order, normalised with INPUT.MEAN/STD (0..1 scale).

The train transform is built for speed: the scale and the crop window are drawn first and only the
source region that lands inside the crop is resized, so a 2048x1024 image cropped to 1024x1024 costs
one resize of about a million output pixels whatever the scale. Colour jitter runs on the crop only,
as one colour-matrix pass, and normalisation is a float32 lookup table per channel.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np


def normalise_luts(mean: Sequence[float], std: Sequence[float]) -> list[np.ndarray]:
    """One float32 256-entry table per RGB channel: v -> (v/255 - mean) / std."""
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"INPUT.MEAN and INPUT.STD need 3 values each, got {list(mean)} and {list(std)}")
    if min(std) <= 0:
        raise ValueError(f"INPUT.STD must be positive, got {list(std)}")
    v = np.arange(256, dtype=np.float64) / 255.0
    return [((v - m) / s).astype(np.float32) for m, s in zip(mean, std)]


def normalise(image_bgr: np.ndarray, luts: Sequence[np.ndarray]) -> np.ndarray:
    """BGR uint8 HxWx3 -> RGB float32 3xHxW through per-channel lookup tables."""
    h, w = image_bgr.shape[:2]
    out = np.empty((3, h, w), dtype=np.float32)
    # cv2.LUT writes straight into each contiguous CHW plane: no transpose copy, channel swap for free.
    for i, plane in enumerate(cv2.split(image_bgr)):
        cv2.LUT(plane, luts[2 - i], dst=out[2 - i])
    return out


def sample_window(scaled: int, crop: int) -> tuple[int, int, int]:
    """Place a crop of `crop` on an axis of `scaled` pixels (the rescaled image).

    Returns (start, end, pad_before): the part [start, end) of the scaled axis that lies inside the crop
    and how many padding pixels come before it. When the scaled image is smaller than the crop, the
    image lands at a random offset inside the crop.
    """
    if scaled >= crop:
        start = int(np.random.randint(0, scaled - crop + 1))
        return start, start + crop, 0
    return 0, scaled, int(np.random.randint(0, crop - scaled + 1))


def _source_span(start: int, end: int, scale: float, size: int) -> tuple[int, int]:
    # The source pixels whose footprint covers the scaled span; rounding outward by under one source
    # pixel changes the effective scale by a fraction of a percent, the same for image and label.
    a = max(0, min(size - 1, int(math.floor(start / scale))))
    b = max(a + 1, min(size, int(math.ceil(end / scale))))
    return a, b


def jitter_colours(img: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """torchvision's brightness, contrast and saturation blends on a BGR uint8 image, as one colour matrix.

    brightness x -> b*x; contrast y -> c*y + (1-c)*mean_grey(y); saturation z -> s*z + (1-s)*grey(z).
    All three are affine, so they compose into a single cv2.transform pass; values are clipped once at
    the end rather than after each step (a difference only where an intermediate step saturates).
    """
    b, c, s = brightness, contrast, saturation
    if b == c == s == 1.0:
        return img
    grey_w = np.array([0.114, 0.587, 0.299])  # BGR weights of the ITU-R 601 luma
    # The mean grey of a strided view is as good a blend target as the full mean, at 1/64 of the cost.
    mean_grey = float(img[::8, ::8].reshape(-1, 3).mean(0) @ grey_w) if c != 1.0 else 0.0
    sat = s * np.eye(3) + (1 - s) * np.outer(np.ones(3), grey_w)
    m = np.empty((3, 4), dtype=np.float32)
    m[:, :3] = c * b * sat
    m[:, 3] = (1 - c) * b * mean_grey  # sat maps a grey vector to itself: the offset stays grey
    return cv2.transform(img, m)


class SegTrainTransform:
    """Random scale, pad and crop, horizontal flip, colour jitter, normalisation.

    Geometric parameters are drawn once and applied to image (bilinear) and label (nearest, exact
    pixel-centre convention so both sample the same positions); padding is `pad_value` for the image
    (the mean colour, 0 after normalisation) and `ignore_index` for the label.
    """

    def __init__(
        self,
        crop_size: Sequence[int],
        scale_range: Sequence[float],
        flip_prob: float,
        brightness: float,
        contrast: float,
        saturation: float,
        mean: Sequence[float],
        std: Sequence[float],
        ignore_index: int = 255,
    ) -> None:
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f"INPUT.CROP_SIZE must be [height, width] > 0, got {list(crop_size)}")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"INPUT.SCALE_RANGE must be [low, high] with 0 < low <= high, got {list(scale_range)}")
        for key, x in (("BRIGHTNESS", brightness), ("CONTRAST", contrast), ("SATURATION", saturation)):
            if not 0 <= x < 1:
                raise ValueError(f"INPUT.{key} must be in [0, 1), got {x}")
        self.crop_h, self.crop_w = int(crop_size[0]), int(crop_size[1])
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip_prob = float(flip_prob)
        self.jitter = (float(brightness), float(contrast), float(saturation))
        self.luts = normalise_luts(mean, std)
        # BGR padding colour that normalises to about zero.
        self.pad_value = tuple(int(round(m * 255)) for m in reversed(list(mean)))
        self.ignore_index = int(ignore_index)

    @classmethod
    def from_config(cls, cfg, ignore_index: int | None = None) -> "SegTrainTransform":
        i = cfg.INPUT
        return cls(i.CROP_SIZE, i.SCALE_RANGE, i.FLIP_PROB, i.BRIGHTNESS, i.CONTRAST, i.SATURATION, i.MEAN, i.STD,
                   cfg.DATASET.IGNORE_INDEX if ignore_index is None else ignore_index)

    def geometry(self, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scale, pad, crop and flip; uint8 in, uint8 out (crop-sized)."""
        h, w = label.shape[:2]
        s = np.random.uniform(*self.scale_range)
        sh, sw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        y0, y1, pad_top = sample_window(sh, self.crop_h)
        x0, x1, pad_left = sample_window(sw, self.crop_w)
        a, b = _source_span(y0, y1, s, h)
        c, d = _source_span(x0, x1, s, w)
        out_size = (x1 - x0, y1 - y0)  # cv2 order: width, height
        img = cv2.resize(image[a:b, c:d], out_size, interpolation=cv2.INTER_LINEAR)
        lab = cv2.resize(label[a:b, c:d], out_size, interpolation=cv2.INTER_NEAREST_EXACT)
        if out_size != (self.crop_w, self.crop_h):
            bottom, right = self.crop_h - pad_top - out_size[1], self.crop_w - pad_left - out_size[0]
            img = cv2.copyMakeBorder(img, pad_top, bottom, pad_left, right, cv2.BORDER_CONSTANT, value=self.pad_value)
            lab = cv2.copyMakeBorder(lab, pad_top, bottom, pad_left, right, cv2.BORDER_CONSTANT,
                                     value=self.ignore_index)
        if np.random.random() < self.flip_prob:
            img, lab = cv2.flip(img, 1), cv2.flip(lab, 1)
        return img, lab

    def color_jitter(self, img: np.ndarray) -> np.ndarray:
        """Brightness, contrast and saturation factors drawn from [1-x, 1+x], applied by `jitter_colours`."""
        bj, cj, sj = self.jitter
        b = np.random.uniform(1 - bj, 1 + bj) if bj else 1.0
        c = np.random.uniform(1 - cj, 1 + cj) if cj else 1.0
        s = np.random.uniform(1 - sj, 1 + sj) if sj else 1.0
        return jitter_colours(img, b, c, s)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img, lab = self.geometry(image, label)
        img = self.color_jitter(img)
        return normalise(img, self.luts), lab


class SegEvalTransform:
    """Normalisation only: evaluation sees the full-resolution image and label."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.luts = normalise_luts(mean, std)

    @classmethod
    def from_config(cls, cfg) -> "SegEvalTransform":
        return cls(cfg.INPUT.MEAN, cfg.INPUT.STD)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return normalise(image, self.luts), label
