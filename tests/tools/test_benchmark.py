"""tools/benchmark.py: parameter split, the FLOP convention, the CLI on a small model."""
from __future__ import annotations

import importlib.util
import json
import os
from collections import OrderedDict

import pytest
import torch
from torch import nn

from segkit.models.segmentors import Segmentor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("segkit_benchmark_tool", os.path.join(ROOT, "tools", "benchmark.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


class Toy(Segmentor):
    aux_names = ("aux",)
    default_aux_weights = (1.0,)

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, padding=1)
        self.aux = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        y = self.body(x)
        return self.outputs(y, OrderedDict(aux=self.aux(y)) if self.training else OrderedDict())


def test_count_params_splits_off_aux_heads():
    assert bench.count_params(Toy()) == {"params": 3 * 8 * 9 + 8 + 8 * 2 + 2, "params_no_aux": 3 * 8 * 9 + 8}


def test_flops_are_twice_the_multiply_adds_of_the_eval_model():
    # 8 outputs x 3 inputs x 9 taps per pixel of a 16x20 map; the aux conv (train only) is not counted.
    assert bench.count_flops(Toy(), (16, 20)) == 2 * 8 * 3 * 9 * 16 * 20


def _cli(capsys, *args) -> dict:
    cfg = os.path.join(ROOT, "configs", "cityscapes", "bisenetv2.yaml")
    assert bench.main(["--config-file", cfg, "--size", "64", "96", "--warmup", "1", "--iters", "2", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_reports_params_flops_and_latency(capsys):
    r = _cli(capsys, "--fuse", "--channels-last")
    assert (r["params"], r["params_no_aux"]) == (5_231_487, 3_358_627)
    # FLOPs of a convolutional network scale with the pixels: 1024x2048 is 341.33x 64x96.
    assert r["gflops"] * (1024 * 2048) / (64 * 96) == pytest.approx(196.8, rel=0.01)
    assert list(r["latency"]) == ["fuse+channels_last"]
    lat = r["latency"]["fuse+channels_last"]
    assert lat["min_ms"] <= lat["median_ms"] and lat["fps"] == pytest.approx(1000 / lat["median_ms"])


def test_cli_compare_times_every_variant(capsys):
    assert list(_cli(capsys, "--compare")["latency"]) == list(bench.VARIANTS)


def test_cli_errors(capsys, tmp_path):
    cfg = os.path.join(ROOT, "configs", "cityscapes", "bisenetv2.yaml")
    assert bench.main(["--config-file", cfg, "--half"]) == 2
    assert "--half" in capsys.readouterr().err
    assert bench.main(["--config-file", cfg, "MODEL.NO_SUCH_KEY", "1"]) == 2
    assert "MODEL.NO_SUCH_KEY" in capsys.readouterr().err


def test_fused_model_gives_the_same_logits():
    from segkit.config import load_cfg
    from segkit.models import build_model

    model = build_model(load_cfg(None, ["MODEL.NAME", "bisenetv2"])).eval()
    x = torch.randn(1, 3, 64, 96)
    fused = bench.prepare(model, torch.device("cpu"), fuse=True, channels_last=True)
    with torch.no_grad():
        torch.testing.assert_close(fused(x.contiguous(memory_format=torch.channels_last)), model(x), atol=1e-3, rtol=1e-3)
