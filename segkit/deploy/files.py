"""Predictions for image files and folders through a Predictor, tolerant of what a folder holds.

Files OpenCV cannot decode by their signature (notes, archives) are skipped with a log line; image files
that are unreadable or cut short are reported and skipped, the rest are still predicted. The caller gets
the counts to summarise and to choose its exit code.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import cv2

from ..data.labels import read_header
from ..evaluation.export import save_prediction
from ..utils.progress import progress
from .predictor import Predictor

logger = logging.getLogger("segkit")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass
class FilesReport:
    predicted: list[str] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "path: reason"

    def summary(self, out_dir: str) -> str:
        text = f"predicted {len(self.predicted)} image(s) into {out_dir}"
        if self.not_images:
            text += f"; skipped {len(self.not_images)} file(s) that are not images"
        if self.unreadable:
            text += f"; {len(self.unreadable)} unreadable image(s) skipped:\n  " + "\n  ".join(self.unreadable)
        return text


def is_video(path: str) -> bool:
    """A camera index ("0") or a file with a video extension."""
    return path.isdigit() or os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def list_inputs(path: str) -> tuple[list[str], list[str]]:
    """(image files, other files) of a file or a folder (not recursive); a missing path is an error."""
    if os.path.isfile(path):
        files = [path]
    elif os.path.isdir(path):
        files = [p for p in (os.path.join(path, f) for f in sorted(os.listdir(path))) if os.path.isfile(p)]
    else:
        raise FileNotFoundError(f"input not found: {path}")
    images = [f for f in files if cv2.haveImageReader(f)]
    others = [f for f in files if f not in set(images)]
    if os.path.isfile(path) and others:
        raise OSError(f"cannot read image {path}: not a format OpenCV decodes")
    seen: dict[str, str] = {}
    for f in images:
        stem = os.path.splitext(os.path.basename(f))[0]
        if stem in seen:  # outputs are named by stem: one would overwrite the other
            raise ValueError(f"{seen[stem]} and {f} share the name {stem!r}")
        seen[stem] = f
    return images, others


def predict_files(predictor: Predictor, path: str, out_dir: str) -> FilesReport:
    """Predict every image of `path` (a file or a folder) into `out_dir`: trainIds/<stem>.png, color/, overlay/."""
    images, others = list_inputs(path)
    report = FilesReport(not_images=others)
    for f in others:
        logger.info("skipping %s: not an image", f)
    for f in progress(images, "predict", unit="img"):
        try:
            read_header(f)  # a file cut short decodes silently into a half-grey image: refuse it first
            image = cv2.imread(f, cv2.IMREAD_COLOR)
            if image is None:
                raise OSError(f"cannot decode {f}")
        except OSError as e:
            logger.warning("skipping unreadable image %s: %s", f, e)
            report.unreadable.append(f"{f}: {e}")
            continue
        stem = os.path.splitext(os.path.basename(f))[0]
        save_prediction(predictor(image), stem, out_dir, palette=predictor.palette, image=image)
        report.predicted.append(f)
    return report
