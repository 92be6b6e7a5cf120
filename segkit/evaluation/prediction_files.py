"""Writing predictions: submission PNGs for the Cityscapes server, colour maps and overlays.

Layout under the prediction folder, one file per image in each subfolder:
- `labelIds/<name>_leftImg8bit.png`: label ids (train ids mapped back through the dataset's
  `train_id_to_label_id`), what the Cityscapes benchmark server and cityscapesscripts' evaluator read;
  for a dataset without that table `trainIds/<name>.png` holds the train ids instead;
- `color/<name>_color.png`: the prediction painted with the dataset palette;
- `overlay/<name>_overlay.png`: the colour map blended over the input image (when its path is known).
The submission files live apart from the others because the official evaluator refuses a folder
where several files match one image.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np
import torch

from ..utils.io import atomic_path

if TYPE_CHECKING:
    from ..data import SegDataset
    from .loop import SampleInfo

OVERLAY_ALPHA = 0.5  # weight of the colour map in the overlay


def _write(path: str, array: np.ndarray) -> None:
    # Encoded in memory: the temporary name of the atomic write has no extension to pick the format by.
    ok, encoded = cv2.imencode(os.path.splitext(path)[1], array)
    if not ok:
        raise OSError(f"could not encode {path}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(encoded.tobytes())


def colorize(pred: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """RGB uint8 [H,W,3] of a train-id map; ids beyond the palette are black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    return table[pred.astype(np.uint8)]


def overlay(image_bgr: np.ndarray, color_bgr: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """A colour map blended over the image with weight `alpha` (both BGR uint8 of one size)."""
    return cv2.addWeighted(image_bgr, 1.0 - alpha, color_bgr, alpha, 0.0)


def save_prediction(
    pred: np.ndarray,
    name: str,
    out_dir: str,
    *,
    palette: Sequence[Sequence[int]] | None = None,
    train_id_to_label_id: np.ndarray | None = None,
    image_path: str | None = None,
    image: np.ndarray | None = None,
) -> dict[str, str]:
    """Write the files described above for one prediction [H,W] of train ids; returns kind -> path.

    The overlay needs the input: `image` (BGR uint8) when the caller has it decoded, else `image_path`."""
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise ValueError(f"prediction for {name} must be [H,W], got shape {pred.shape}")
    if pred.size and (pred.min() < 0 or pred.max() > 255):
        raise ValueError(f"prediction for {name} has classes outside 0..255")
    ids = pred.astype(np.uint8)
    written = {}
    if train_id_to_label_id is not None:
        table = np.asarray(train_id_to_label_id, dtype=np.uint8)
        if table.shape != (256,):
            raise ValueError(f"train_id_to_label_id must have 256 entries, got shape {table.shape}")
        written["labelIds"] = os.path.join(out_dir, "labelIds", f"{name}_leftImg8bit.png")
        _write(written["labelIds"], table[ids])
    else:
        written["trainIds"] = os.path.join(out_dir, "trainIds", f"{name}.png")
        _write(written["trainIds"], ids)
    if palette is not None:
        color = colorize(ids, palette)
        written["color"] = os.path.join(out_dir, "color", f"{name}_color.png")
        _write(written["color"], cv2.cvtColor(color, cv2.COLOR_RGB2BGR))
        if image is None and image_path:
            image = cv2.imread(image_path, cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"cannot read the input image {image_path} for the overlay of {name}")
        if image is not None:
            bgr = cv2.cvtColor(color, cv2.COLOR_RGB2BGR)
            if bgr.shape[:2] != image.shape[:2]:
                bgr = cv2.resize(bgr, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
            written["overlay"] = os.path.join(out_dir, "overlay", f"{name}_overlay.png")
            _write(written["overlay"], overlay(image, bgr))
    return written


class PredictionWriter:
    """Loop consumer: `save_prediction` for every image, with the dataset's palette and label-id table."""

    def __init__(self, out_dir: str, palette: Sequence[Sequence[int]] | None = None,
                 train_id_to_label_id: np.ndarray | None = None) -> None:
        self.out_dir = out_dir
        self.palette = palette
        self.train_id_to_label_id = train_id_to_label_id

    @classmethod
    def from_dataset(cls, dataset: SegDataset, out_dir: str) -> PredictionWriter:
        return cls(out_dir, dataset.palette, dataset.train_id_to_label_id)

    def process(self, pred: torch.Tensor, label: torch.Tensor, info: SampleInfo) -> None:
        save_prediction(pred.cpu().numpy(), info.name, self.out_dir, palette=self.palette,
                        train_id_to_label_id=self.train_id_to_label_id, image_path=info.path or None)

    def finish(self) -> dict[str, Any]:
        return {}
