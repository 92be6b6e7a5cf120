"""The onnxruntime runner behind the segmentor contract: inference() modes, and the checks at load."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from segkit.deploy import OnnxSegmentor, build_runtime
from segkit.evaluation import InferenceMode, inference

from .conftest import (assert_labels_are_the_argmax, tied_frame_input, tied_input, tied_logits_file,
                       tied_upsampled_file)


@pytest.mark.parametrize("mode", [
    {"flip": True},
    {"flip": True, "scales": (0.75, 1.25)},
    {"slide": True, "crop_size": (64, 96), "stride": (40, 60)},
])
def test_runner_through_inference_equals_the_model(exported, mode):
    runner = OnnxSegmentor(exported.onnx, num_classes=19, threads=1)
    assert isinstance(runner, torch.nn.Module) and not runner.training and not list(runner.parameters())
    image = torch.randn(3, 90, 130)
    views = InferenceMode(batch_size=2, **mode)
    expected = inference(exported.model, image, views, num_classes=19)
    probs = inference(runner.eval().to("cpu"), image, views, num_classes=19)
    assert probs.shape == (19, 90, 130)
    assert (probs - expected).abs().max() < 1e-4
    labels = inference(runner, image, views, num_classes=19, return_probs=False)
    assert (labels == expected.argmax(0)).float().mean() > 0.9999


def test_labels_from_inside_onnxruntime_are_the_argmax_of_its_logits(exported, tmp_path):
    runner = OnnxSegmentor(exported.onnx, num_classes=19, threads=1)
    assert_labels_are_the_argmax(runner, torch.randn(2, 3, 67, 93))
    tied = OnnxSegmentor(tied_logits_file(tmp_path / "tied.onnx"), num_classes=5, threads=1)
    assert_labels_are_the_argmax(tied, tied_input())
    frame = OnnxSegmentor(tied_upsampled_file(tmp_path / "tied19.onnx"), num_classes=19, threads=1)
    assert_labels_are_the_argmax(frame, tied_frame_input())
    assert tied.predict_labels(tied_input())[0, 0, 0] == 4 and tied.predict_labels(tied_input())[0, 1, 0] == 1


def test_whole_image_labels_come_from_the_runtime_and_equal_the_logits_path(exported, monkeypatch):
    runner = OnnxSegmentor(exported.onnx, num_classes=19, threads=1)
    image = torch.randn(3, 90, 130)  # padded to 96x160 and cropped back
    expected = inference(runner, image, InferenceMode(), num_classes=19).argmax(0)
    calls = []
    monkeypatch.setattr(runner, "forward", lambda x: calls.append(x.shape) or 1 / 0)  # the logits are not asked for
    labels = inference(runner, image, InferenceMode(), num_classes=19, return_probs=False, label_dtype=torch.uint8)
    assert labels.dtype == torch.uint8 and torch.equal(labels.long(), expected) and not calls


def test_build_runtime_onnx_uses_the_given_file(exported):
    runner = build_runtime(None, "auto", onnx_path=exported.onnx, num_classes=19, threads=1)
    assert isinstance(runner, OnnxSegmentor) and runner.path == exported.onnx


def test_class_count_mismatch_names_both(exported):
    with pytest.raises(ValueError, match=r"model\.onnx predicts 19 classes but MODEL\.NUM_CLASSES is 11"):
        OnnxSegmentor(exported.onnx, num_classes=11)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        OnnxSegmentor(str(tmp_path / "absent.onnx"))


def _identity_file(path, name="images", shape=("n", 3, "h", "w"), out_shape=None) -> str:
    """A one-node graph with the given input name and shape, output 'logits' = input."""
    x = helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, list(out_shape or shape))
    graph = helper.make_graph([helper.make_node("Identity", [name], ["logits"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_foreign_interface_is_refused_naming_what_the_file_has(tmp_path):
    with pytest.raises(ValueError, match=r"inputs \[input tensor\(float\).*expects one input 'images'"):
        OnnxSegmentor(_identity_file(tmp_path / "a.onnx", name="input"))
    with pytest.raises(ValueError, match=r"fixes the input's batch 1, height 512, width 1024"):
        OnnxSegmentor(_identity_file(tmp_path / "b.onnx", shape=(1, 3, 512, 1024)))


def test_symbolic_class_count_is_probed(tmp_path):
    path = _identity_file(tmp_path / "c.onnx", out_shape=("n", "c", "h", "w"))  # "logits" = images: 3 classes
    assert OnnxSegmentor(path).num_classes == 3
    with pytest.raises(ValueError, match="predicts 3 classes but MODEL.NUM_CLASSES is 19"):
        OnnxSegmentor(path, num_classes=19)


def test_inputs_outside_the_exported_range_are_refused(exported):
    runner = OnnxSegmentor(exported.onnx)
    low = runner.min_size
    with pytest.raises(ValueError, match=rf"input {low[0] - 1}x64 is outside the sizes .* \(from {low[0]}x{low[1]} up\)"):
        runner(torch.zeros(1, 3, low[0] - 1, 64))
    assert np.isfinite(runner(torch.zeros(1, 3, *low)).numpy()).all()


@pytest.mark.parametrize("content", ["truncated", "not onnx"])
def test_unloadable_file_is_one_error_naming_it(exported, tmp_path, content):
    from segkit.deploy.runtime import OnnxLoadError

    path = tmp_path / "bad.onnx"
    data = open(exported.onnx, "rb").read()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else b"PK\x03\x04 a zip, not a model")
    with pytest.raises(OnnxLoadError, match=rf"cannot load ONNX file {path} \(\d+ bytes\): truncated, not an ONNX"):
        OnnxSegmentor(str(path))
