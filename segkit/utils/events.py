"""Training events: scalars as JSON lines in OUTPUT_DIR/events.jsonl, mirrored to TensorBoard when asked.

events.jsonl is what `tools/plot_log.py` draws; one object per line, each with "iteration" and the
scalars logged at it (losses per head, lr, data_time, or evaluation metrics). Appending line by line
keeps everything written before a crash; a resumed run drops the lines past its start iteration so the
curves do not fold back on themselves.
"""
from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, Mapping

import numpy as np

EVENTS_FILE = "events.jsonl"
logger = logging.getLogger("segkit")


def read_events(path: str) -> list[dict[str, Any]]:
    """The records of an events file; a last line cut short by a crash is skipped."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class EventWriter:
    """Appends scalars to events.jsonl and, with `tensorboard=True`, to OUTPUT_DIR/tb (main process only)."""

    def __init__(self, output_dir: str, tensorboard: bool = False, start_iter: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = os.path.join(output_dir, EVENTS_FILE)
        self.tb = None
        if not enabled:
            return
        os.makedirs(output_dir, exist_ok=True)
        if os.path.exists(self.path):
            kept = [r for r in read_events(self.path) if int(r.get("iteration", 0)) <= start_iter]
            with open(self.path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # tensorboard is an optional extra
                raise ValueError('LOG.TENSORBOARD needs the tensorboard package: pip install -e ".[vis]"') from e
            self.tb = SummaryWriter(os.path.join(output_dir, "tb"), purge_step=start_iter + 1 if start_iter else None)

    def scalars(self, iteration: int, values: Mapping[str, float], prefix: str = "") -> None:
        if not self.enabled:
            return
        clean = {f"{prefix}{k}": float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"iteration": int(iteration), **clean}) + "\n")
        if self.tb is not None:
            for k, v in clean.items():
                self.tb.add_scalar(k, v, iteration)

    def images(self, iteration: int, tag: str, images_hwc_uint8: list[np.ndarray]) -> None:
        """RGB uint8 images (e.g. colour-coded predictions beside their ground truth), TensorBoard only."""
        if self.enabled and self.tb is not None and images_hwc_uint8:
            for i, img in enumerate(images_hwc_uint8):
                self.tb.add_image(f"{tag}/{i}", img, iteration, dataformats="HWC")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None


def draw_curves(output_dir: str) -> str | None:
    """OUTPUT_DIR/curves.png from events.jsonl when matplotlib is installed (tools/plot_log.py draws it later
    otherwise); returns the path or None."""
    from .plots import plot_training_curves, plots_available

    path = os.path.join(output_dir, EVENTS_FILE)
    if not os.path.isfile(path):
        return None
    if not plots_available():
        # Said once at the end of training, where the picture would have appeared.
        logger.info('curves.png skipped: matplotlib is not installed (pip install -e ".[vis]"; '
                    "tools/plot_log.py draws it from events.jsonl later)")
        return None
    records = read_events(path)
    try:
        return plot_training_curves(records, os.path.join(output_dir, "curves.png"),
                                    title=os.path.basename(os.path.abspath(output_dir)))
    except ValueError:  # nothing to draw yet (no loss logged)
        return None
