"""segkit.Predictor: label maps as evaluation predicts them, on every runtime; colour maps; video."""
from __future__ import annotations

import glob
import inspect
import os

import cv2
import numpy as np
import pytest
import torch

import segkit
from segkit.data.cityscapes import PALETTE
from segkit.data.seg_transforms import normalise, normalise_luts
from segkit.deploy import (DEFAULT_CALIB_IMAGES, Predictor, config_runtime, dataset_calibration, open_video,
                           overlay_video)
from segkit.evaluation import InferenceMode, inference
from tests.deploy.conftest import MEAN, STD
from tools import evaluate, export_onnx, predict


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)


def _torch_labels(exported, image: np.ndarray, **mode) -> np.ndarray:
    """The evaluation path by hand: the config's normalisation, inference() with the plain model."""
    x = torch.from_numpy(normalise(image, normalise_luts(MEAN, STD)))
    return inference(exported.model, x, InferenceMode(**mode), num_classes=19, return_probs=False).numpy()


@pytest.mark.parametrize("runtime", ["torch", "fused", "onnx"])
def test_labels_equal_the_torch_path(exported, image, runtime):
    predictor = segkit.Predictor.from_config(exported.cfg_file, exported.weights, runtime=runtime, threads=1)
    labels = predictor(image)
    assert labels.shape == image.shape[:2] and labels.dtype == np.uint8
    expected = _torch_labels(exported, image)
    if runtime == "torch":
        np.testing.assert_array_equal(labels, expected)
    else:  # folded or exported: the same function up to float rounding
        assert (labels == expected).mean() > 0.9999


def test_onnx_weights_and_inference_mode_from_arguments(exported, image):
    predictor = Predictor.from_config(exported.cfg_file, exported.onnx, flip=True, scales=[0.75, 1.0])
    expected = _torch_labels(exported, image, flip=True, scales=[0.75, 1.0], batch_size=2)
    assert (predictor(image) == expected).mean() > 0.9999


def test_auto_exports_once_into_the_cache_and_predicts_what_torch_does(exported, image, monkeypatch, tmp_path):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    predictor = Predictor.from_config(exported.cfg_file, exported.weights)  # CPU with onnxruntime installed

    def cached() -> dict[str, float]:
        return {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "onnx" / "**" / "*.onnx"), recursive=True)}

    files = cached()
    assert len(files) == 1
    again = Predictor.from_config(exported.cfg_file, exported.weights)  # cached: the same file, no export
    assert cached() == files
    assert (again(image) == _torch_labels(exported, image)).mean() > 0.9999


def test_colorize_and_overlay(exported, image):
    predictor = Predictor(exported.cfg, exported.model)
    assert predictor.class_names[0] == "road" and predictor.palette[0] == tuple(PALETTE[0])
    labels = np.zeros(image.shape[:2], np.uint8)
    labels[:, 45:] = 1
    color = predictor.colorize(labels)
    assert color.shape == image.shape and tuple(color[0, 0]) == tuple(PALETTE[0][::-1])  # BGR
    overlay = predictor.overlay(image, labels)
    np.testing.assert_allclose(overlay.astype(float), 0.5 * image + 0.5 * color, atol=1)
    with pytest.raises(ValueError, match="do not match"):
        predictor.overlay(image, labels[:10])


def test_bad_image_is_refused(exported):
    predictor = Predictor(exported.cfg, exported.model)
    with pytest.raises(ValueError, match="BGR uint8 image"):
        predictor(np.zeros((8, 8), np.uint8))


def test_video_in_video_out(exported, tmp_path):
    src, out = str(tmp_path / "clip.mp4"), str(tmp_path / "overlay.mp4")
    writer = cv2.VideoWriter(src, cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(12):
        writer.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    writer.release()
    predictor = Predictor(exported.cfg, exported.model)
    assert overlay_video(predictor, src, out) == 12
    capture = open_video(out)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and capture.get(cv2.CAP_PROP_FPS) == 12.0
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (96, 64)
    capture.release()


def test_unopenable_video_names_path_and_backends(tmp_path):
    with pytest.raises(OSError, match=r"cannot open video .*missing\.mp4 with OpenCV \(backends tried: .+\)"):
        open_video(str(tmp_path / "missing.mp4"))


def test_cuda_without_cuda_is_one_line(exported, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device 'cuda' asked for, but CUDA is not available here \(.+\): use "
                                         r"device 'cpu'$"):
        Predictor.from_config(exported.cfg_file, exported.weights, device="cuda")
    with pytest.raises(ValueError, match="device 'cuda:1' asked for"):
        Predictor(exported.cfg, exported.model, device="cuda:1")
    with pytest.raises(ValueError, match="device 'gpu' is not a device torch knows"):
        Predictor(exported.cfg, exported.model, device="gpu")


def test_every_calibration_default_is_the_deploy_constant():
    assert inspect.signature(Predictor.from_config).parameters["calib_images"].default == DEFAULT_CALIB_IMAGES
    assert inspect.signature(config_runtime).parameters["calib_images"].default == DEFAULT_CALIB_IMAGES
    assert inspect.signature(dataset_calibration).parameters["num_images"].default == DEFAULT_CALIB_IMAGES
    assert evaluate.parse_args(["--weights", "w.pth"]).calib_images == DEFAULT_CALIB_IMAGES
    assert predict.parse_args(["--weights", "w.pth", "--input", "x.png"]).calib_images == DEFAULT_CALIB_IMAGES
    assert export_onnx.parse_args(["--weights", "w", "--out", "m.onnx", "--int8"]).calib_images == DEFAULT_CALIB_IMAGES
