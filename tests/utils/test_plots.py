"""segkit.utils.plots: every picture is written as a real PNG of a sensible size."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from segkit.utils.plots import plot_class_iou, plot_confusion_matrix, plot_training_curves


def _png(path: str) -> np.ndarray:
    img = cv2.imread(path)
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    return img


def test_confusion_matrix_picture(tmp_path):
    conf = np.array([[50, 5, 0], [10, 30, 0], [0, 0, 0]])
    img = _png(plot_confusion_matrix(conf, ["road", "car", "sky"], str(tmp_path / "cm.png")))
    assert img.std() > 10  # not a blank canvas


def test_class_iou_bars_mark_missing_classes(tmp_path, monkeypatch):
    from segkit.utils import plots

    _png(plot_class_iou({"road": 97.5, "car": 80.0, "train": None}, str(tmp_path / "iou.png")))
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    plot_class_iou({"road": 97.5, "car": 80.0, "train": None}, str(tmp_path / "iou2.png"))
    assert sorted(t.get_text() for t in drawn[0].axes[0].texts) == ["80.0", "97.5", "n/a"]


def test_training_curves_from_events(tmp_path):
    records = [{"iteration": i, "loss": 3.0 / i, "loss_main": 2.0 / i, "lr": 0.01 * (1 - i / 50)} for i in range(1, 50)]
    records += [{"iteration": 25, "mIoU": 30.0}, {"iteration": 50, "mIoU": 41.0}]
    _png(plot_training_curves(records, str(tmp_path / "curves.png"), title="demo"))
    with pytest.raises(ValueError, match="no loss"):
        plot_training_curves([{"iteration": 1}], str(tmp_path / "x.png"))


def test_confusion_matrix_colour_bar_title_and_cells_all_read_percent(tmp_path, monkeypatch):
    from segkit.utils import plots

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["road", "car"], str(tmp_path / "cm.png"))
    ax, bar = drawn[0].axes
    assert "%" in ax.get_title() and "%" in bar.get_ylabel()
    assert bar.get_ylim() == (0.0, 100.0)
    assert sorted(t.get_text() for t in ax.texts) == ["100", "25", "75"]
