"""Segmentation transforms on uint8 OpenCV arrays, image and label together.

Images are BGR uint8 HxWx3 (as cv2.imread gives them), labels uint8 HxW of train ids. The output image
is float32 CHW in RGB order, normalised with INPUT.MEAN/STD (0..1 scale).

The train transform is built for speed: the scale and the crop window are drawn first and only the
source region that lands inside the crop is resized, so a 2048x1024 image cropped to 1024x1024 costs
one resize of about a million output pixels whatever the scale. Colour jitter runs on the crop only
(segkit.data.photometric), and normalisation is a float32 lookup table per channel.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .photometric import JITTER_STYLES, jitter_colours, photometric_distortion

# mmsegmentation's RandomCrop redraws a window in which one class holds more than INPUT.CAT_MAX_RATIO of the
# labelled pixels up to this many times, then keeps the last draw.
CROP_REDRAWS = 10


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


class SegTrainTransform:
    """Random scale, pad and crop, horizontal flip, colour jitter, normalisation.

    Geometric parameters are drawn once and applied to image (bilinear) and label (nearest, exact
    pixel-centre convention so both sample the same positions); padding is `pad_value` for the image
    (the mean colour, 0 after normalisation) and `ignore_index` for the label.

    The recipes differ in details, each a parameter: `scale_step` > 0 draws the scale from the grid
    low, low + step, ..., high instead of uniformly (STDC-Seg: 0.125; PIDNet and DDRNet: 0.1); `cover_crop`
    raises a scale that would leave the image smaller than the crop to the smallest one that covers it
    (STDC-Seg) instead of padding; `cat_max_ratio` < 1 redraws a crop window in which one class holds more
    than that share of the labelled pixels (mmsegmentation: 0.75); `jitter_style` and `hue` choose the
    colour jitter (segkit.data.photometric).
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
        scale_step: float = 0.0,
        cover_crop: bool = False,
        cat_max_ratio: float = 1.0,
        jitter_style: str = "torchvision",
        hue: float = 0.0,
    ) -> None:
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f"INPUT.CROP_SIZE must be [height, width] > 0, got {list(crop_size)}")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"INPUT.SCALE_RANGE must be [low, high] with 0 < low <= high, got {list(scale_range)}")
        for key, x in (("BRIGHTNESS", brightness), ("CONTRAST", contrast), ("SATURATION", saturation)):
            if not 0 <= x < 1:
                raise ValueError(f"INPUT.{key} must be in [0, 1), got {x}")
        if scale_step < 0:
            raise ValueError(f"INPUT.SCALE_STEP must be >= 0 (0: any scale in INPUT.SCALE_RANGE), got {scale_step}")
        if not 0 < cat_max_ratio <= 1:
            raise ValueError(f"INPUT.CAT_MAX_RATIO must be in (0, 1] (1: off), got {cat_max_ratio}")
        if jitter_style not in JITTER_STYLES:
            raise ValueError(f"INPUT.JITTER must be one of {list(JITTER_STYLES)}, got '{jitter_style}'")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"INPUT.HUE must be in [0, 0.5] (a share of a full turn), got {hue}")
        if hue and jitter_style != "mmseg":
            raise ValueError(f"INPUT.HUE {hue} applies to INPUT.JITTER mmseg only, not '{jitter_style}'")
        self.crop_h, self.crop_w = int(crop_size[0]), int(crop_size[1])
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        low, high = self.scale_range
        # The grid's last point is `high` when the step divides the range (a hair of slack for float steps).
        self.scales = low + scale_step * np.arange(int((high - low) / scale_step + 1e-6) + 1) if scale_step else None
        self.cover_crop = bool(cover_crop)
        self.cat_max_ratio = float(cat_max_ratio)
        self.flip_prob = float(flip_prob)
        self.jitter = (float(brightness), float(contrast), float(saturation))
        self.jitter_style = jitter_style
        self.hue = float(hue)
        self.luts = normalise_luts(mean, std)
        # BGR padding colour that normalises to about zero.
        self.pad_value = tuple(int(round(m * 255)) for m in reversed(list(mean)))
        self.ignore_index = int(ignore_index)

    @classmethod
    def from_config(cls, cfg, ignore_index: int | None = None) -> "SegTrainTransform":
        i = cfg.INPUT
        return cls(i.CROP_SIZE, i.SCALE_RANGE, i.FLIP_PROB, i.BRIGHTNESS, i.CONTRAST, i.SATURATION, i.MEAN, i.STD,
                   cfg.DATASET.IGNORE_INDEX if ignore_index is None else ignore_index, scale_step=i.SCALE_STEP,
                   cover_crop=i.COVER_CROP, cat_max_ratio=i.CAT_MAX_RATIO, jitter_style=i.JITTER, hue=i.HUE)

    def draw_scale(self, h: int, w: int) -> float:
        """The rescale factor of an h x w image: from the range or its grid, raised to cover the crop if asked."""
        s = float(np.random.choice(self.scales)) if self.scales is not None else np.random.uniform(*self.scale_range)
        if self.cover_crop:
            s = max(s, self.crop_h / h, self.crop_w / w)
        return s

    def _one_class_dominates(self, label: np.ndarray) -> bool:
        # cv2.calcHist counts a window about 4x faster than np.bincount.
        counts = cv2.calcHist([np.ascontiguousarray(label)], [0], None, [256], [0, 256]).ravel()
        if self.ignore_index < counts.size:
            counts[self.ignore_index] = 0
        total = counts.sum()
        return np.count_nonzero(counts) <= 1 or counts.max() >= self.cat_max_ratio * total

    def geometry(self, image: np.ndarray, label: np.ndarray, balance: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Scale, pad, crop and flip; uint8 in, uint8 out (crop-sized). `balance` False skips the
        `cat_max_ratio` redraws (a label that is only a validity mask)."""
        h, w = label.shape[:2]
        s = self.draw_scale(h, w)
        sh, sw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        for attempt in range(CROP_REDRAWS + 1):
            y0, y1, pad_top = sample_window(sh, self.crop_h)
            x0, x1, pad_left = sample_window(sw, self.crop_w)
            a, b = _source_span(y0, y1, s, h)
            c, d = _source_span(x0, x1, s, w)
            # The class shares of the source window stand for the crop's: resizing keeps them up to rounding.
            if (not balance or self.cat_max_ratio >= 1 or attempt == CROP_REDRAWS
                    or not self._one_class_dominates(label[a:b, c:d])):
                break
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
        """The INPUT.JITTER style's colour jitter (segkit.data.photometric); amounts of 0 change nothing."""
        bj, cj, sj = self.jitter
        if self.jitter_style == "mmseg":
            return photometric_distortion(img, bj, cj, sj, self.hue)
        b = np.random.uniform(1 - bj, 1 + bj) if bj else 1.0
        c = np.random.uniform(1 - cj, 1 + cj) if cj else 1.0
        s = np.random.uniform(1 - sj, 1 + sj) if sj else 1.0
        return jitter_colours(img, b, c, s, self.jitter_style)

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
