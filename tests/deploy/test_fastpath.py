"""The PyTorch inference runtimes compute the model's logits; an unknown runtime is named with the choices.
(`auto` and `onnx` are covered in test_predictor.py and test_runtime.py.)"""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from segkit.deploy import build_runtime
from segkit.deploy.fastpath import ChannelsLast


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
    with pytest.raises(ValueError, match="auto or one of torch, fused, compile, onnx"):
        build_runtime(_tiny_segmentor(), "tensorrt")


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
