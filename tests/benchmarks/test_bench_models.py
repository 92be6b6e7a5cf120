"""benchmarks/bench_models.py: one command writes the results JSON (protocol, machine, every run), the page's
generated block and the picture; --from-json regenerates them without timing."""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"segkit_{name}", os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load("bench_models")

PAGE = "# Results\n\nintro\n\n<!-- bench_models:begin -->\nold table\n<!-- bench_models:end -->\n\n## Protocol\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    page = tmp / "RESULTS.md"
    page.write_text(PAGE)
    out = tmp / "machine.json"
    argv = ["--configs", "bisenetv2", "--sizes", "64x128", "--quick", "--runtimes", "eager", "fused",
            "--out", str(out), "--page", str(page)]
    assert bench.main(argv) == 0
    return tmp, out, page


def test_results_hold_protocol_machine_and_every_run(run):
    tmp, out, page = run
    r = json.loads(out.read_text())
    p = r["protocol"]
    assert (p["batch"], p["sizes"], p["warmup"], p["iters"], p["quick"]) == (1, ["64x128"], 1, 2, True)
    assert list(p["runtimes"]) == ["eager", "fused"] and "round-robin" in p["interleaving"]
    assert set(p["timed"]) == {"model", "predictor"} and p["threads"] >= 1
    m = r["machine"]
    assert m["cpu"]["model"] and "fp32" in m["limits"] and m["versions"]["torch"]
    entry = r["models"]["bisenetv2"]
    assert entry["config"] == os.path.join("configs", "cityscapes", "bisenetv2.yaml")
    assert entry["params_no_aux"] == 3_358_627
    assert entry["gflops"]["64x128"] == pytest.approx(196.8 * 64 * 128 / (1024 * 2048), rel=0.01)
    fused = entry["latency"]["64x128"]["fused"]
    assert len(fused["model"]["runs_ms"]) == 2 and fused["predictor"]["median_ms"] > 0 and fused["limit_ms"] > 0
    # the machine's speed during the run: a 1536^3 fp32 GEMM timed in the same round-robin
    probe = entry["gemm_probe"]["64x128"]
    assert probe["gflop"] == pytest.approx(2 * 1536 ** 3 / 1e9)
    assert probe["gflops_per_s"] == pytest.approx(probe["gflop"] / probe["median_ms"] * 1000)
    assert f"ran at {probe['gflops_per_s']:.0f}–{probe['gflops_per_s']:.0f} GFLOP/s" in page.read_text()


def test_the_page_block_is_rewritten_and_the_rest_kept(run):
    tmp, out, page = run
    text = page.read_text()
    assert text.startswith("# Results\n\nintro\n") and text.endswith("## Protocol\n") and "old table" not in text
    assert "| bisenetv2 " in text and "forward pass, 64x128" in text and "Predictor end to end, 64x128" in text
    assert "74.95 (bisenetv2_cityscapes)" in text  # the zoo's published figure for the same model


def test_from_json_draws_the_picture_when_a_published_figure_exists(run, capsys):
    tmp, out, page = run
    r = json.loads(out.read_text())
    r["models"]["bisenetv2"]["published"] = {"miou": 74.95, "zoo": "bisenetv2_cityscapes", "protocol": "val"}
    edited = tmp / "edited.json"
    edited.write_text(json.dumps(r))
    assert bench.main(["--from-json", str(edited), "--page", str(page)]) == 0
    printed = capsys.readouterr().out
    assert (tmp / "edited.png").stat().st_size > 10_000 and "picture:" in printed and "round-robin" in printed
    assert "74.95 (bisenetv2_cityscapes)" in page.read_text() and "edited.png" in page.read_text()


def test_the_default_is_set_beside_the_nominal_limit_and_the_gemm_rate_of_its_run():
    """10 GFLOPs at 512x1024: 100 ms at the nominal 100 GFLOP/s, 125 ms at the 80 GFLOP/s the GEMM reached."""
    row = {"runtime": "onnx", "exact": True, "title": "ONNX Runtime fp32", "predictor": {"median_ms": 150.0}}
    lossy = {"runtime": "onnx", "exact": False, "title": "ONNX Runtime INT8", "predictor": {"median_ms": 50.0}}
    results = {"machine": {"limits": {"fp32": {"gops": 100.0}}}, "protocol": {"sizes": ["512x1024", "1024x2048"]},
               "models": {"m": {"default_runtime": "onnx", "gflops": {"512x1024": 10.0},
                                "gemm_probe": {"512x1024": {"gflops_per_s": 80.0}},
                                "latency": {"512x1024": {"ort_int8": lossy, "ort_fp32": row}}}}}
    headers, rows = bench.default_rows(results)
    assert rows == [["m", "512x1024", "ONNX Runtime fp32", "150", "100", "1.50", "80", "125", "1.20"]]
    assert headers[5] == "x nominal" and headers[-1] == "x that rate"


def test_bad_arguments_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit, match="config 'no_such_model' not found"):
        bench.main(["--configs", "no_such_model", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        bench.parse_args(["--sizes", "512by1024"])
    assert "is not HxW" in capsys.readouterr().err
    page = tmp_path / "p.md"
    page.write_text("no markers")
    with pytest.raises(SystemExit, match="has no <!-- bench_models:begin -->"):
        bench.write_page(str(page), "x")


def test_plot_script_refuses_results_without_figures(run, capsys):
    tmp, out, page = run
    plot = _load("plot_results")
    r = json.loads(out.read_text())
    r["models"]["bisenetv2"]["published"] = None  # as for a config the zoo publishes nothing for
    bare = tmp / "bare.json"
    bare.write_text(json.dumps(r))
    assert plot.main([str(bare), "--out", str(tmp / "none.png")]) == 1
    assert "no model" in capsys.readouterr().err and not (tmp / "none.png").exists()


def test_merge_keeps_the_other_configs_and_sizes(run):
    tmp, out, page = run
    merged = tmp / "merged.json"
    merged.write_text(out.read_text())
    argv = ["--configs", "ddrnet_23_slim", "--sizes", "64x96", "--quick", "--runtimes", "fused", "--no-predictor",
            "--out", str(merged), "--merge"]
    assert bench.main(argv) == 0
    r = json.loads(merged.read_text())
    assert set(r["models"]) == {"bisenetv2", "ddrnet_23_slim"} and r["protocol"]["sizes"] == ["64x128", "64x96"]
    assert list(r["protocol"]["runtimes"]) == ["eager", "fused"]
    assert r["models"]["ddrnet_23_slim"]["latency"]["64x96"]["fused"]["predictor"] is None


REFERENCE_FILE = '''
from torch import nn
TITLE = "Upstream eager"
MODELS = {"bisenetv2": lambda: nn.Sequential(nn.Conv2d(3, 19, 3, padding=1), nn.Upsample(scale_factor=1.0))}
'''


def test_a_reference_implementation_is_timed_in_the_same_round_robin(tmp_path, capsys):
    ref = tmp_path / "upstream.py"
    ref.write_text(REFERENCE_FILE)
    page = tmp_path / "RESULTS.md"
    page.write_text(PAGE)
    out = tmp_path / "ref.json"
    argv = ["--configs", "bisenetv2", "ddrnet_23_slim", "--sizes", "64x128", "--quick", "--runtimes", "eager",
            "fused", "--reference", str(ref), "--out", str(out), "--page", str(page)]
    assert bench.main(argv) == 0
    r = json.loads(out.read_text())
    assert list(r["protocol"]["runtimes"]) == ["reference", "eager", "fused"]
    assert r["protocol"]["reference"]["title"] == "Upstream eager"
    row = r["models"]["bisenetv2"]["latency"]["64x128"]["reference"]
    assert row["runtime"] == "reference" and len(row["model"]["runs_ms"]) == 2 and row["predictor"] is None
    assert "reference" not in r["models"]["ddrnet_23_slim"]["latency"]["64x128"]  # MODELS names bisenetv2 only
    # the ratios are those of the JSON's medians
    eager = r["models"]["bisenetv2"]["latency"]["64x128"]["eager"]["model"]["median_ms"]
    ratio = f"({eager / row['model']['median_ms']:.2f}x)"
    printed = capsys.readouterr().out
    assert "against the reference" in printed and ratio in printed and "reference: Upstream eager" in printed
    text = page.read_text()
    assert "**Against Upstream eager**" in text and ratio in text and "fastest exact Predictor" in text


def test_a_reference_file_without_its_names_is_refused(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("X = 1\n")
    with pytest.raises(SystemExit, match="must define TITLE"):
        bench.main(["--configs", "bisenetv2", "--reference", str(bad), "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="no such file"):
        bench.main(["--configs", "bisenetv2", "--reference", str(tmp_path / "none.py"), "--out", str(tmp_path / "x.json")])
