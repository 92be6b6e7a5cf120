"""segkit.evaluation.report: the pictures beside a metrics JSON and the val strips for TensorBoard."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from segkit.config import get_cfg
from segkit.evaluation import report
from segkit.evaluation.prediction_files import colorize
from segkit.evaluation.report import SUMMARY_METRICS, val_pictures, write_report_plots

PALETTE = [(10, 20, 30), (200, 100, 50)]


def _metrics() -> dict:
    return {"mIoU": 62.5, "split": "val", "confusion_matrix": [[30, 10], [0, 60]],
            "per_class": {"road": {"IoU": 75.0, "Acc": 75.0}, "car": {"IoU": 50.0, "Acc": 100.0}}}


def test_plots_are_written_beside_the_json(tmp_path):
    pytest.importorskip("matplotlib")
    written = write_report_plots(_metrics(), str(tmp_path / "metrics_eval.json"))
    assert written == [str(tmp_path / "metrics_eval_confusion.png"), str(tmp_path / "metrics_eval_iou.png")]
    assert all((tmp_path / name).stat().st_size > 1000 for name in ("metrics_eval_confusion.png", "metrics_eval_iou.png"))


def test_no_confusion_matrix_or_no_matplotlib_draws_nothing(tmp_path, monkeypatch, caplog):
    metrics = _metrics()
    del metrics["confusion_matrix"]  # a test split: predictions only
    assert write_report_plots(metrics, str(tmp_path / "m.json")) == []
    monkeypatch.setattr(report, "plots_available", lambda: False)
    logger = logging.getLogger("segkit")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="segkit"):
            assert write_report_plots(_metrics(), str(tmp_path / "m.json")) == []
    finally:
        logger.removeHandler(caplog.handler)
    assert "matplotlib is not installed" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_summary_metrics_are_the_headline_figures():
    assert SUMMARY_METRICS[0] == "mIoU" and {"mAcc", "aAcc", "iIoU"} <= set(SUMMARY_METRICS)


class SignOfFirstChannel(nn.Module):
    """Class 0 where the first input channel is positive, else class 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :1], -x[:, :1]], dim=1)


class TwoImages:
    num_classes = 2
    palette = PALETTE

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = [torch.randn(3, 5, 7, generator=g), torch.randn(3, 6, 4, generator=g)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image = self.images[i]
        label = torch.zeros(image.shape[1:], dtype=torch.int64)
        label[0, 0] = 255  # ignored: drawn black, past the palette
        return {"image": image, "label": label}


def test_val_pictures_put_ground_truth_beside_the_prediction_and_restore_train_mode():
    model = SignOfFirstChannel().train()
    dataset = TwoImages()
    pictures = val_pictures(model, dataset, get_cfg(), torch.device("cpu"), count=5)  # more than there are
    assert len(pictures) == 2 and model.training
    for i, picture in enumerate(pictures):
        image, label = dataset[i]["image"], dataset[i]["label"].numpy()
        h, w = label.shape
        assert picture.shape == (h, 2 * w, 3) and picture.dtype == np.uint8
        np.testing.assert_array_equal(picture[:, :w], colorize(label, PALETTE))
        assert picture[0, 0].tolist() == [0, 0, 0] and picture[1, 0].tolist() == list(PALETTE[0])
        np.testing.assert_array_equal(picture[:, w:], colorize((image[0] <= 0).numpy().astype(np.int64), PALETTE))
