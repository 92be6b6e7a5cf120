"""tools/benchmark.py: the CLI on a small model; the fused copy it times computes the same logits."""
from __future__ import annotations

import importlib.util
import json
import os

import pytest
import torch

from segkit.models.fuse import prepare_for_inference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("segkit_benchmark_tool", os.path.join(ROOT, "tools", "benchmark.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _cli(capsys, *args) -> dict:
    cfg = os.path.join(ROOT, "configs", "cityscapes", "bisenetv2.yaml")
    assert bench.main(["--config-file", cfg, "--size", "64", "96", "--warmup", "1", "--iters", "2", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_reports_params_flops_and_latency(capsys):
    r = _cli(capsys, "--fuse", "--channels-last")
    assert (r["params"], r["params_no_aux"]) == (5_231_487, 3_358_627)
    # FLOPs of a convolutional network scale with the pixels: 1024x2048 is 341.33x 64x96.
    assert r["gflops"] * (1024 * 2048) / (64 * 96) == pytest.approx(196.8, rel=0.01)
    assert list(r["latency"]) == ["fused"]
    lat = r["latency"]["fused"]
    assert lat["min_ms"] <= lat["median_ms"] and lat["fps"] == pytest.approx(1000 / lat["median_ms"])


def test_cli_compare_times_every_variant(capsys):
    assert list(_cli(capsys, "--compare")["latency"]) == list(bench.VARIANTS)


def test_cli_errors(capsys, tmp_path):
    cfg = os.path.join(ROOT, "configs", "cityscapes", "bisenetv2.yaml")
    assert bench.main(["--config-file", cfg, "--half"]) == 1
    assert "--half" in capsys.readouterr().err
    assert bench.main(["--config-file", cfg, "MODEL.NO_SUCH_KEY", "1"]) == 1
    assert "MODEL.NO_SUCH_KEY" in capsys.readouterr().err


def test_fused_model_gives_the_same_logits():
    from segkit.config import load_cfg
    from segkit.models import build_model

    model = build_model(load_cfg(None, ["MODEL.NAME", "bisenetv2"])).eval()
    x = torch.randn(1, 3, 64, 96)
    fused = prepare_for_inference(model, torch.device("cpu"), fuse=True, channels_last=True)
    with torch.no_grad():
        torch.testing.assert_close(fused(x.contiguous(memory_format=torch.channels_last)), model(x), atol=1e-3, rtol=1e-3)


def test_cuda_without_cuda_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = os.path.join(ROOT, "configs", "cityscapes", "bisenetv2.yaml")
    assert bench.main(["--config-file", cfg, "--device", "cuda"]) == 1
    assert capsys.readouterr().err.startswith("error: device 'cuda' asked for, but CUDA is not available here")


def test_cli_names_the_backbone_and_the_variant_of_its_flags(capsys):
    r = _cli(capsys, "--fuse")
    assert r["model"] == "bisenetv2" and r["backbone"] == "bisenetv2"  # its branches: the backbone
    assert list(r["latency"]) == ["bn_folded"]  # folded, not channels_last: not one of the compared variants
    assert set(r) >= {"params", "params_no_aux", "gflops"} and isinstance(r["gflops"], float)
