"""The PyTorch inference runtimes compute the model's logits; an unknown runtime is named with the choices.
(`auto` and `onnx` are covered in test_predictor.py and test_runtime.py.)"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

import segkit.deploy.fastpath as fastpath
from segkit.deploy import build_runtime, default_runtime, runtime_label
from segkit.deploy.fastpath import ChannelsLast
from segkit.deploy.quantize import Calibration
from segkit.utils.io import UnwritablePathError


def _tiny_segmentor() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 5, 1))
    with torch.no_grad():  # BN statistics that are not the identity, so folding them is checked
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize("runtime", ["torch", "fused", "compile"])
def test_every_pytorch_runtime_computes_the_model(runtime):
    model = _tiny_segmentor()
    x = torch.randn(2, 3, 20, 28)
    with torch.inference_mode():
        expected = model(x)
        runner = build_runtime(model, runtime)
        got = runner(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got.contiguous(), expected, rtol=1e-4, atol=1e-5)
    if runtime == "fused":
        assert isinstance(runner, ChannelsLast) and not any(isinstance(m, nn.BatchNorm2d) for m in runner.modules())


def test_unknown_runtime_names_the_choices():
    with pytest.raises(ValueError, match="auto or one of torch, fused, compile, onnx, openvino"):
        build_runtime(_tiny_segmentor(), "tensorrt")
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of fp32, bf16, int8, int8\\+bf16"):
        build_runtime(_tiny_segmentor(), "auto", precision="fp8")


@pytest.mark.parametrize("runtime", ["torch", "fused", "compile"])
def test_pytorch_runtimes_are_exact_and_say_so(runtime, caplog):
    with caplog.at_level("INFO", logger="segkit"):
        runner = build_runtime(_tiny_segmentor(), runtime)
    assert runtime_label(runner) == f"{runtime} fp32" and f"runtime: {runtime} fp32" in caplog.text
    with pytest.raises(ValueError, match=f"runtime {runtime} has no precision int8 .* int8 runs on onnx, openvino"):
        build_runtime(_tiny_segmentor(), runtime, precision="int8")


def test_auto_without_onnxscript_runs_fused_and_names_the_package(monkeypatch, caplog):
    monkeypatch.setattr(fastpath, "missing_packages", lambda names=fastpath.EXPORT_PACKAGES:
                        [n for n in names if n == "onnxscript"])
    assert default_runtime("cpu") == "fused"
    with caplog.at_level("INFO", logger="segkit"):
        runner = build_runtime(_tiny_segmentor(), "auto")
    assert isinstance(runner, ChannelsLast) and runtime_label(runner) == "fused fp32"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "onnxscript not installed" in warnings[0] and "fused PyTorch" in warnings[0]
    assert "runtime: fused fp32 (auto)" in caplog.text


def test_lossy_precisions_are_never_the_default():
    assert default_runtime("cpu") in ("onnx", "fused") and default_runtime("cuda") == "fused"
    with pytest.raises(ValueError, match="precision bf16 runs on the CPU runtimes"):
        default_runtime("cuda", "bf16")


def test_int8_from_a_model_needs_calibration():
    pytest.importorskip("onnxruntime")
    with pytest.raises(ValueError, match="precision int8 quantizes .* needs calibration images"):
        build_runtime(_tiny_segmentor(), "onnx", precision="int8")


def _calibration() -> Calibration:
    return Calibration("random 20x28", lambda: iter([np.random.default_rng(i).standard_normal((1, 3, 20, 28), np.float32)
                                                    for i in range(2)]))


def test_int8_ops_choose_what_the_cached_int8_model_quantizes(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    # A Sigmoid that only "every type" quantizes, inside the network: the output layer (the ReLU) stays float.
    model = nn.Sequential(_tiny_segmentor(), nn.Sigmoid(), nn.ReLU()).eval()
    every = build_runtime(model, "onnx", precision="int8", calibration=_calibration(), num_classes=5)
    conv = build_runtime(model, "onnx", precision="int8", calibration=_calibration(), num_classes=5,
                         int8_ops=["Conv"])
    assert conv.path != every.path  # one cache entry per choice of operator types

    def quantized_outputs(path: str) -> set[str]:
        """The operator types whose outputs are quantized."""
        graph = onnx.load(path).graph
        made_by = {o: n.op_type for n in graph.node for o in n.output}
        return {made_by.get(n.input[0], "input") for n in graph.node if n.op_type == "QuantizeLinear"}

    assert "Sigmoid" in quantized_outputs(every.path)
    assert "Sigmoid" not in quantized_outputs(conv.path) and "Conv" in quantized_outputs(conv.path)
    x = torch.from_numpy(next(_calibration().inputs()))
    with torch.inference_mode():
        assert np.corrcoef(conv(x).flatten(), model(x).flatten())[0, 1] > 0.99


def test_int8_ops_without_an_int8_model_to_make_are_refused(tmp_path):
    with pytest.raises(ValueError, match="int8_ops \\['Conv'\\] chooses what precision int8 .* precision fp32 quantizes nothing"):
        build_runtime(_tiny_segmentor(), "onnx", int8_ops=["Conv"])


def test_a_cache_entry_that_does_not_load_is_exported_again(tmp_path, monkeypatch, segkit_log):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    model = _tiny_segmentor()
    first = build_runtime(model, "onnx", num_classes=5)
    data = open(first.path, "rb").read()
    with open(first.path, "wb") as f:
        f.write(data[: len(data) // 3])  # a copy cut short
    again = build_runtime(model, "onnx", num_classes=5)
    assert again.path == first.path and os.path.getsize(again.path) == len(data)
    assert f"ONNX cache entry does not load, exporting it again: cannot load ONNX file {first.path}" in segkit_log.text
    x = torch.randn(1, 3, 20, 28)
    torch.testing.assert_close(again(x), model(x), rtol=1e-4, atol=1e-4)


def test_an_unwritable_cache_is_named_before_the_export(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("SEGKIT_CACHE", str(blocker))  # the cache would be a folder inside a file
    monkeypatch.setattr(fastpath, "export_onnx", lambda *a, **k: pytest.fail("exported before the check"))
    with pytest.raises(UnwritablePathError, match=rf"cannot write the ONNX cache \(under \$SEGKIT_CACHE.*\) "
                                                 rf"{blocker}/onnx: {blocker} is a file"):
        build_runtime(_tiny_segmentor(), "onnx", num_classes=5)
