"""benchmarks/bench_labels.py: the Predictor with the argmax inside the runtime and with it in PyTorch, side by side."""
from __future__ import annotations

import importlib.util
import os

import pytest

pytest.importorskip("onnxruntime")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("segkit_bench_labels",
                                              os.path.join(ROOT, "benchmarks", "bench_labels.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_exact_runtime_prints_both_timings_and_no_differing_pixel(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    assert bench.main(["--configs", "bisenetv2", "--size", "64x128", "--runtimes", "ort_fp32",
                       "--warmup", "0", "--iters", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "argmax in PyTorch" in out and "argmax in the runtime" in out
    row = next(line for line in out.splitlines() if line.startswith("bisenetv2"))
    assert "ONNX Runtime fp32" in row and float(row.split()[-1]) == 0
