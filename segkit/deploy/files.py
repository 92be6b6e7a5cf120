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

from ..data.folder import image_samples
from ..data.labels import read_header
from ..evaluation.prediction_files import save_prediction
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


def predict_files(predictor: Predictor, path: str, out_dir: str) -> FilesReport:
    """Predict every image of `path` (a file or a folder) into `out_dir`: trainIds/<stem>.png, color/, overlay/."""
    others: list[str] = []
    images = [sample.image for sample in image_samples(path, skipped=others)]
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
