"""The benchmarks check what their runtimes and pictures need before timing anything: a missing package is one
line naming it and its extra, and a run that can time nothing it was asked for exits non-zero."""
from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name: str):
    path = os.path.join(ROOT, "benchmarks", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"segkit_needs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


labels, models, plot, backbones = (_load(n) for n in ("bench_labels", "bench_models", "plot_results",
                                                       "bench_backbones"))
DEPLOY, VIS, HUB = 'pip install -e ".[deploy]"', 'pip install -e ".[vis]"', 'pip install -e ".[hub]"'


def _hide(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_bench_labels_without_its_runtimes_exits_1_naming_them(monkeypatch, capsys):
    _hide(monkeypatch, "onnxruntime", "openvino")
    monkeypatch.setattr(labels, "build_model", lambda cfg: pytest.fail("built a model with nothing to time"))
    assert labels.main(["--size", "64x128", "--iters", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "onnxruntime, openvino not installed" in err and DEPLOY in err
    assert "\n" not in err


def test_bench_labels_help_lists_every_runtime(capsys):
    with pytest.raises(SystemExit):
        labels.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert labels.EXPORTED and all(v.name in text for v in labels.EXPORTED)


def test_bench_models_refuses_runtimes_it_cannot_time(monkeypatch, tmp_path):
    _hide(monkeypatch, "onnxruntime", "openvino")
    out = tmp_path / "r.json"
    monkeypatch.setattr(models, "time_model", lambda *a, **k: pytest.fail("timed"))
    with pytest.raises(SystemExit) as err:
        models.main(["--configs", "bisenetv2", "--sizes", "64x128", "--quick", "--runtimes", "ort_fp32", "ov_fp32",
                     "--out", str(out)])
    message = str(err.value)
    assert message.startswith("error: none of the runtimes") and "ort_fp32, ov_fp32: onnxruntime, openvino" in message
    assert DEPLOY in message and not out.exists()


def test_runnable_names_what_each_left_out_runtime_lacks(monkeypatch):
    from segkit.deploy.speed import CPU_VARIANTS

    needs = sys.modules["needs"]
    _hide(monkeypatch, "onnxscript")
    by_name = {v.name: v for v in CPU_VARIANTS}
    chosen, line = needs.runnable([by_name["fused"], by_name["ort_fp32"], by_name["ov_int8"]])
    assert [v.name for v in chosen] == ["fused"]
    assert line == f"ort_fp32, ov_int8: onnxscript not installed ({DEPLOY})"


def _results(out: str) -> dict:
    """A results JSON as bench_models writes it: one model, one runtime, a published figure."""
    cpu = {"model": "Test CPU", "cores": 2, "clock_ghz": 2.0, "clock_source": "test", "flags": ["avx2"]}
    timing = {"median_ms": 10.0, "runs_ms": [10.0]}
    row = {"runtime": "fused", "precision": "fp32", "exact": True, "title": "fused+channels_last", "model": timing,
           "predictor": timing, "limit_ms": 1.0}
    return {"machine": {"name": "test", "cpu": cpu, "threads": 2, "device": "cpu", "limits": {}, "versions": {}},
            "protocol": {"batch": 1, "sizes": ["64x128"], "threads": 2, "warmup": 1, "iters": 1, "interleaving": "x",
                         "timed": {"model": "y"}, "runtimes": {"fused": "fused+channels_last"},
                         "int8_calibration": "z", "weights": "w", "quick": True},
            "command": "python bench", "skipped_runtimes": [], "out": out,
            "models": {"bisenetv2": {"params_no_aux": 3e6, "gflops": {"64x128": 1.0},
                                     "latency": {"64x128": {"fused": row}},
                                     "published": {"miou": 75.0, "zoo": "z", "protocol": "val"}}}}


def test_without_matplotlib_the_page_is_still_written_and_the_picture_named(monkeypatch, tmp_path, capsys):
    page = tmp_path / "RESULTS.md"
    page.write_text("<!-- bench_models:begin -->\n<!-- bench_models:end -->\n")
    out = str(tmp_path / "r.json")
    said_before = []
    monkeypatch.setattr(models, "measure", lambda args: said_before.append(capsys.readouterr().err) or _results(out))
    _hide(monkeypatch, "matplotlib")
    assert models.main(["--configs", "bisenetv2", "--page", str(page)]) == 0
    assert "picture skipped" in said_before[0] and VIS in said_before[0]  # before the (long) run
    printed = capsys.readouterr().out
    assert f"picture: none (matplotlib is not installed: {VIS})" in printed
    assert "| bisenetv2 " in page.read_text() and not (tmp_path / "r.png").exists()
    # --from-json: the same, from the file
    (tmp_path / "r.json").write_text(json.dumps(_results(out)))
    assert models.main(["--from-json", str(tmp_path / "r.json"), "--page", str(page)]) == 0
    assert "picture: none (matplotlib is not installed" in capsys.readouterr().out


def test_plot_script_without_matplotlib_is_one_error_line(monkeypatch, tmp_path, capsys):
    (tmp_path / "r.json").write_text(json.dumps(_results("r.json")))
    _hide(monkeypatch, "matplotlib")
    assert plot.main([str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: drawing the picture needs matplotlib; matplotlib is not installed: {VIS}"


def test_bench_backbones_checks_timm_before_timing(monkeypatch, capsys):
    _hide(monkeypatch, "timm")
    timed = []
    monkeypatch.setattr(backbones, "bench_model", lambda name, *a: timed.append(name) or {"model": name})
    with pytest.raises(SystemExit) as err:
        backbones.main(["--models", "resnet50d"])
    assert str(err.value) == f"error: resnet50d: the timm reference needs timm, not installed ({HUB})" and not timed
    assert backbones.main(["--iters", "1"]) == 0  # the default list: the timm models named and left out
    assert timed == ["resnet18", "resnet50", "efficientnet_b0"]
    skipped = f"skipped resnet50d, xception41: the timm reference needs timm, not installed ({HUB})"
    assert skipped in capsys.readouterr().err


def test_bench_backbones_refuses_an_unknown_name_before_timing(monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.setattr(backbones, "bench_model", lambda *a: pytest.fail("timed"))
    with pytest.raises(SystemExit, match="no torchvision or timm reference for 'resnet7'"):
        backbones.main(["--models", "resnet18", "resnet7"])
