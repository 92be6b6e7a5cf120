"""OpenVINO behind the segmentor contract: fp32 equals PyTorch (the export's parity check), bf16 and INT8 only
when asked for, the precision it ran recorded. Skipped where openvino is not installed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from segkit.deploy import Calibration, build_runtime, check_parity, quantize_int8, runtime_label  # noqa: E402
from segkit.deploy.openvino_runtime import OpenVinoSegmentor, cpu_has_bf16  # noqa: E402
from segkit.evaluation import InferenceMode, inference  # noqa: E402

from .conftest import (CHECK_SIZES, assert_labels_are_the_argmax, tied_frame_input, tied_input,  # noqa: E402
                       tied_logits_file, tied_upsampled_file)


def _calibration() -> Calibration:
    rng = np.random.default_rng(0)
    return Calibration("test-random", lambda: iter([rng.standard_normal((1, 3, 64, 96), dtype=np.float32)
                                                    for _ in range(3)]))


def test_fp32_passes_the_export_parity_check_at_two_sizes(exported):
    runner = OpenVinoSegmentor(exported.onnx, num_classes=19, threads=1)
    assert runner.precision == "fp32" and not runner.training and not list(runner.parameters())
    results = check_parity(exported.model, exported.onnx, CHECK_SIZES, num_classes=19, runner=runner)
    assert [r.size for r in results] == [tuple(s) for s in CHECK_SIZES] and all(r.ok for r in results)
    assert max(r.max_abs_diff for r in results) < 1e-4


def test_fp32_through_inference_equals_the_model(exported):
    runner = OpenVinoSegmentor(exported.onnx, num_classes=19, threads=1)
    image = torch.randn(3, 90, 130)
    mode = InferenceMode(batch_size=2, flip=True, scales=(0.75, 1.25))
    assert (inference(runner, image, mode, num_classes=19)
            - inference(exported.model, image, mode, num_classes=19)).abs().max() < 1e-4


def test_labels_from_inside_openvino_are_the_argmax_of_its_logits(exported, tmp_path):
    runner = OpenVinoSegmentor(exported.onnx, num_classes=19, threads=1)
    assert_labels_are_the_argmax(runner, torch.randn(2, 3, 67, 93))
    tied = OpenVinoSegmentor(tied_logits_file(tmp_path / "tied.onnx"), num_classes=5, threads=1)
    assert_labels_are_the_argmax(tied, tied_input())
    frame = OpenVinoSegmentor(tied_upsampled_file(tmp_path / "tied19.onnx"), num_classes=19, threads=1)
    assert_labels_are_the_argmax(frame, tied_frame_input())
    image = torch.randn(3, 90, 130)
    assert torch.equal(inference(runner, image, InferenceMode(), return_probs=False),
                       inference(runner, image, InferenceMode(), num_classes=19).argmax(0))


def test_build_runtime_openvino_checks_fp32_and_labels_it(exported, caplog):
    with caplog.at_level("INFO", logger="segkit"):
        runner = build_runtime(exported.model, "openvino", num_classes=19, threads=1)
    assert isinstance(runner, OpenVinoSegmentor) and runtime_label(runner) == "openvino fp32"
    assert "OpenVINO fp32 parity" in caplog.text and "runtime: openvino fp32" in caplog.text


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has neither AMX nor AVX512-BF16")
def test_bf16_is_close_but_not_exact(exported):
    runner = build_runtime(None, "openvino", onnx_path=exported.onnx, precision="bf16", num_classes=19, threads=1)
    assert runtime_label(runner) == "openvino bf16"
    x = torch.randn(1, 3, 67, 93)
    with torch.inference_mode():
        expected = exported.model(x)
    diff = (runner(x) - expected).abs().max()
    assert 1e-6 < diff < 0.2 * expected.abs().max()  # bf16 rounding: visible, yet far below the logits' scale


def test_int8_from_the_model_is_quantized_once_and_cached(exported):
    first = build_runtime(exported.model, "openvino", precision="int8", calibration=_calibration(),
                          num_classes=19, threads=1)
    again = build_runtime(exported.model, "openvino", precision="int8", calibration=_calibration(),
                          num_classes=19, threads=1)
    assert runtime_label(first) == "openvino int8" and "-int8-" in first.path and again.path == first.path
    assert first(torch.randn(1, 3, 67, 93)).shape == (1, 19, 67, 93)


def test_an_int8_file_runs_as_int8_and_bf16_makes_it_int8_bf16(exported, tmp_path):
    int8 = str(tmp_path / "m_int8.onnx")
    quantize_int8(exported.onnx, int8, _calibration().inputs())
    assert runtime_label(build_runtime(None, "openvino", onnx_path=int8, num_classes=19)) == "openvino int8"
    if cpu_has_bf16():
        runner = build_runtime(None, "openvino", onnx_path=int8, precision="bf16", num_classes=19)
        assert runtime_label(runner) == "openvino int8+bf16"


def test_bad_arguments_are_named(exported, tmp_path):
    with pytest.raises(ValueError, match=r"model\.onnx predicts 19 classes but MODEL\.NUM_CLASSES is 11"):
        OpenVinoSegmentor(exported.onnx, num_classes=11)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        OpenVinoSegmentor(exported.onnx, precision="int4")
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        OpenVinoSegmentor(str(tmp_path / "absent.onnx"))
    runner = OpenVinoSegmentor(exported.onnx, num_classes=19)
    runner.min_size = (65, 65)
    with pytest.raises(ValueError, match="input 64x64 is outside the sizes"):
        runner(torch.zeros(1, 3, 64, 64))


def test_predictor_runs_openvino_and_refuses_a_lossy_precision_on_torch(exported):
    from segkit.deploy import Predictor

    predictor = Predictor.from_config(exported.cfg_file, exported.weights, runtime="openvino")
    assert runtime_label(predictor.model) == "openvino fp32"
    image = np.random.default_rng(0).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    exact = Predictor.from_config(exported.cfg_file, exported.weights, runtime="torch")
    assert (predictor(image) == exact(image)).mean() > 0.999
    with pytest.raises(ValueError, match="runtime fused has no precision bf16"):
        Predictor.from_config(exported.cfg_file, exported.weights, runtime="fused", precision="bf16")
