"""segkit.deploy.files: a folder predicted image by image, what is not an image skipped, what is broken reported."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from segkit.deploy.files import FilesReport, is_video, predict_files

PALETTE = [(0, 0, 0), (255, 255, 255)]


class ThresholdPredictor:
    """A stand-in for segkit.Predictor: class 1 where the blue channel is bright, with the palette it exports."""

    palette = PALETTE

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        return (image[..., 0] > 127).astype(np.uint8)


def _image(path, width: int = 6) -> np.ndarray:
    image = np.zeros((4, width, 3), np.uint8)
    image[:, : width // 2] = 200
    cv2.imwrite(str(path), image)
    return image


def test_folder_predicts_images_skips_other_files_and_reports_broken_ones(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    first = _image(src / "a.png")
    _image(src / "b.jpg", width=8)
    (src / "notes.txt").write_text("not an image")
    data = (src / "a.png").read_bytes()
    (src / "cut.png").write_bytes(data[: len(data) - 20])  # a copy cut short: the signature still says PNG
    predictor = ThresholdPredictor()
    report = predict_files(predictor, str(src), str(out))
    assert report.predicted == [str(src / "a.png"), str(src / "b.jpg")] and predictor.calls == 2
    assert report.not_images == [str(src / "notes.txt")]
    assert len(report.unreadable) == 1 and report.unreadable[0].startswith(f"{src / 'cut.png'}: ")
    assert "truncated" in report.unreadable[0]
    labels = cv2.imread(str(out / "trainIds" / "a.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels, (first[..., 0] > 127).astype(np.uint8))
    color = cv2.imread(str(out / "color" / "b_color.png"))
    assert color.shape == (4, 8, 3) and color[0, 0].tolist() == [255, 255, 255] and color[0, -1].tolist() == [0, 0, 0]
    assert os.path.isfile(out / "overlay" / "a_overlay.png") and not os.path.exists(out / "trainIds" / "cut.png")


def test_single_file_and_what_is_not_there(tmp_path):
    _image(tmp_path / "one.png")
    report = predict_files(ThresholdPredictor(), str(tmp_path / "one.png"), str(tmp_path / "out"))
    assert report.predicted == [str(tmp_path / "one.png")] and not report.not_images and not report.unreadable
    with pytest.raises(FileNotFoundError, match="missing"):
        predict_files(ThresholdPredictor(), str(tmp_path / "missing"), str(tmp_path / "out"))


def test_summary_counts_what_happened():
    assert FilesReport(predicted=["a", "b"]).summary("out") == "predicted 2 image(s) into out"
    text = FilesReport(predicted=["a"], not_images=["n.txt"], unreadable=["c.png: truncated"]).summary("o")
    assert text == ("predicted 1 image(s) into o; skipped 1 file(s) that are not images; 1 unreadable image(s) "
                    "skipped:\n  c.png: truncated")


@pytest.mark.parametrize("path,video", [("0", True), ("12", True), ("clip.MP4", True), ("a/b.mkv", True),
                                        ("frame.png", False), ("folder", False), ("mp4", False)])
def test_is_video_is_a_camera_index_or_a_video_extension(path, video):
    assert is_video(path) is video
