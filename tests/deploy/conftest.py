"""One exported model for the runtime, INT8 and Predictor tests: BiSeNetV2 (no zoo backbone to register),
its config file, weights and parity-checked ONNX file, built once per session."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from segkit.config import load_cfg
from segkit.deploy import export_onnx
from segkit.models import build_model

# Odd sizes, neither multiples of the network stride nor of each other.
CHECK_SIZES = ((67, 93), (100, 141))
MEAN, STD = [0.3, 0.4, 0.5], [0.2, 0.25, 0.3]  # not the defaults: the code must take the config's


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("deploy")
    cfg_file = tmp / "cfg.yaml"
    cfg_file.write_text(f"OUTPUT_DIR: {tmp / 'out'}\nMODEL:\n  NAME: bisenetv2\n  NUM_CLASSES: 19\n"
                        f"INPUT:\n  MEAN: {MEAN}\n  STD: {STD}\nTEST:\n  CROP_SIZE: [64, 96]\n  BATCH_SIZE: 2\n"
                        "DATALOADER:\n  NUM_WORKERS: 0\n")
    cfg = load_cfg(str(cfg_file))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    weights = tmp / "model.pth"
    torch.save(model.state_dict(), weights)
    onnx_path = tmp / "model.onnx"
    results = export_onnx(model, str(onnx_path), check_sizes=CHECK_SIZES, num_classes=19)
    return SimpleNamespace(tmp=tmp, cfg_file=str(cfg_file), cfg=cfg, model=model, weights=str(weights),
                           onnx=str(onnx_path), results=results)


@pytest.fixture(autouse=True)
def _restore_logger():
    # The tools point the "segkit" logger at a test's captured stdout; later tests must not write there.
    logger = logging.getLogger("segkit")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    for h in logger.handlers:
        if h not in handlers:
            h.close()
    logger.handlers[:], logger.propagate, logger.level = handlers, propagate, level


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # The ONNX export cache (and the label cache) in the session's temp folder, shared by its tests.
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path_factory.getbasetemp() / "segkit-cache"))


def tied_logits_file(path) -> str:
    """A 1x1-conv "segmentor" whose classes 1 and 3 (and 0, 2 and 4 where the input is 0) tie exactly:
    an argmax must pick the first of equal maxima, as torch.argmax does."""
    weight = np.zeros((5, 3, 1, 1), np.float32)
    weight[1, 0] = weight[3, 0] = 1.0  # classes 1 and 3 both copy channel 0
    weight[4, 1] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["logits"])], "tied",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 5, "h", "w"])],
        [onnx.numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def tied_input() -> torch.Tensor:
    """Channel 0 positive or zero, channel 1 above it in one corner: ties 1=3 and 0=1=2=3=4 both occur."""
    x = torch.zeros(1, 3, 6, 7)
    x[0, 0, :3] = 1.0
    x[0, 1, 0, 0] = 2.0
    return x


def tied_upsampled_file(path, num_classes: int = 19) -> str:
    """Class c copies input channel c % 3, then a bilinear x2 upsampling (the last layer of most segmentors):
    ties between several classes at every pixel, at the layouts a runtime picks for frame-sized inputs."""
    weight = np.zeros((num_classes, 3, 1, 1), np.float32)
    weight[np.arange(num_classes), np.arange(num_classes) % 3] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["low"]),
         helper.make_node("Resize", ["low", "", "scales"], ["logits"], mode="linear")], "tied_upsampled",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", num_classes, "H", "W"])],
        [onnx.numpy_helper.from_array(weight, "w"),
         onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def tied_frame_input() -> torch.Tensor:
    """Small integers: equal channels tie exactly, and so do their interpolations."""
    return torch.from_numpy(np.random.default_rng(0).integers(0, 3, (1, 3, 128, 256)).astype(np.float32))


def assert_labels_are_the_argmax(runner, x: torch.Tensor) -> None:
    """predict_labels(x) is exactly torch.argmax of forward(x): same shape, every pixel, ties to the first."""
    with torch.inference_mode():
        expected = runner(x).argmax(1)
        labels = runner.predict_labels(x)
    assert labels.shape == expected.shape and torch.equal(labels.long(), expected)
