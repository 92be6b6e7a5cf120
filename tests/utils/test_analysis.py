"""segkit.utils.analysis: the parameter split, the FLOP convention, interleaved latency."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from segkit.models.segmentors import Segmentor
from segkit.utils.analysis import count_flops, count_params, measure_latency


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
    assert count_params(Toy()) == {"params": 3 * 8 * 9 + 8 + 8 * 2 + 2, "params_no_aux": 3 * 8 * 9 + 8}


def test_flops_are_twice_the_multiply_adds_of_the_eval_model():
    # 8 outputs x 3 inputs x 9 taps per pixel of a 16x20 map; the aux conv (train only) is not counted.
    assert count_flops(Toy(), (16, 20)) == 2 * 8 * 3 * 9 * 16 * 20


def test_measure_latency_times_every_model_and_gives_channels_last_inputs():
    seen = {}

    def model_for(name):
        def run(x):
            seen[name] = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return run

    out = measure_latency({"eager": model_for("eager"), "channels_last": model_for("channels_last")},
                          (8, 8), torch.device("cpu"), warmup=1, iters=3)
    assert set(out) == {"eager", "channels_last"} and seen == {"eager": False, "channels_last": True}
    for r in out.values():
        assert 0 < r["min_ms"] <= r["median_ms"] and r["fps"] == 1000.0 / r["median_ms"]
        assert len(r["runs_ms"]) == 3 and min(r["runs_ms"]) == pytest.approx(r["min_ms"], abs=1e-3)


def test_min_batch_per_process_finds_batchnorm_over_pooled_maps():
    from segkit.utils.analysis import min_batch_per_process

    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    assert min_batch_per_process(plain, (16, 16)) == 1
    assert min_batch_per_process(pooled, (16, 16)) == 2
