"""Video and camera input for a Predictor: every frame predicted, an overlay video written frame for frame.

`open_video("clip.mp4")` or `open_video("0")` (a camera index) gives a cv2.VideoCapture, or an error
naming the path and the backends OpenCV tried. `overlay_video(predictor, source, out)` writes the
overlays with the source's frame size and rate, and as many frames as it read; a progress bar (or a
periodic log line off a terminal) shows frames per second.
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from ..utils.progress import progress
from .predictor import Predictor

DEFAULT_FPS = 30.0  # for sources that do not report a rate (some cameras)


def open_video(source: str | int) -> cv2.VideoCapture:
    """A VideoCapture of a file or a camera index ("0", 0); an error names the source and the backend."""
    camera = isinstance(source, int) or (isinstance(source, str) and source.isdigit())
    capture = cv2.VideoCapture(int(source) if camera else source)
    if not capture.isOpened():
        backends = ", ".join(cv2.videoio_registry.getBackendName(b) for b in
                             (cv2.videoio_registry.getCameraBackends() if camera
                              else cv2.videoio_registry.getStreamBackends()))
        what = f"camera {int(source)}" if camera else f"video {source}"
        raise OSError(f"cannot open {what} with OpenCV (backends tried: {backends or 'none'})")
    return capture


def frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """BGR uint8 frames until the source ends."""
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def overlay_video(predictor: Predictor, source: str | int, out_path: str, fourcc: str = "mp4v") -> int:
    """Write `predictor`'s overlay of every frame of `source` to `out_path`; returns the number of frames."""
    capture = open_video(source)
    writer = None
    count = 0
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        for frame in progress(frames(capture), desc="video", total=total if total and total > 0 else None,
                              unit="frame"):
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*fourcc), fps, size)
                if not writer.isOpened():
                    raise OSError(f"cannot write video {out_path} (codec {fourcc}, {size[0]}x{size[1]} at {fps} fps)")
            writer.write(predictor.overlay(frame, predictor(frame)))
            count += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return count
