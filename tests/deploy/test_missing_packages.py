"""A runtime, export or quantization whose packages are missing is one ValueError naming them and the deploy
extra, raised before any export (packages simulated missing: None in sys.modules makes their import fail)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

import segkit.deploy.fastpath as fastpath
import segkit.deploy.onnx_export as onnx_export
from segkit.deploy import OnnxSegmentor, OpenVinoSegmentor, build_runtime, default_runtime, export_onnx, quantize_int8
from segkit.deploy.quantize import Calibration

HINT = 'pip install -e ".[deploy]"'


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1)).eval()


def _hide(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def no_export(monkeypatch):
    """Fails the test if anything is exported or captured."""
    monkeypatch.setattr(fastpath, "cached_onnx_export", lambda *a, **k: pytest.fail("exported before the check"))
    monkeypatch.setattr(onnx_export, "capture", lambda *a, **k: pytest.fail("captured before the check"))


@pytest.mark.parametrize("runtime, hidden, named", [
    ("onnx", ("onnxscript",), "runtime onnx (exports the model to ONNX) needs onnxscript (not installed)"),
    ("onnx", ("onnxscript", "onnxruntime"), "needs onnxscript, onnxruntime (not installed)"),
    ("openvino", ("openvino",), "runtime openvino (exports the model to ONNX) needs openvino (not installed)"),
])
def test_an_explicit_runtime_names_its_missing_packages_before_exporting(monkeypatch, no_export, runtime, hidden,
                                                                          named):
    _hide(monkeypatch, *hidden)
    with pytest.raises(ValueError) as err:
        build_runtime(_model(), runtime)
    message = str(err.value)
    assert named in message and message.endswith(HINT) and "\n" not in message


@pytest.mark.parametrize("precision", ["int8", "bf16", "int8+bf16"])
def test_a_lossy_precision_names_the_packages_and_the_extra(monkeypatch, no_export, precision):
    _hide(monkeypatch, "onnxscript", "openvino")
    with pytest.raises(ValueError) as err:
        build_runtime(_model(), "openvino", precision=precision, calibration=Calibration("x", lambda: iter([])))
    assert "needs onnxscript, openvino (not installed)" in str(err.value) and str(err.value).endswith(HINT)
    # "auto" for a lossy precision: the old hint said `pip install openvino`, which alone was not enough
    with pytest.raises(ValueError) as err:
        default_runtime("cpu", precision)
    assert "onnxscript" in str(err.value) and "openvino" in str(err.value) and str(err.value).endswith(HINT)
    assert "pip install openvino" not in str(err.value)


def test_int8_via_onnxruntime_needs_the_exporter_too(monkeypatch, no_export):
    _hide(monkeypatch, "openvino", "onnxscript")
    with pytest.raises(ValueError, match="precision int8 runs on OpenVINO or onnxruntime .*onnxscript, openvino"):
        default_runtime("cpu", "int8")


def test_openvino_needs_onnxruntime_to_check_its_export(monkeypatch, no_export):
    # The export OpenVINO runs is parity-checked by onnxruntime: without it "auto" must not choose openvino.
    _hide(monkeypatch, "onnxruntime")
    with pytest.raises(ValueError, match="onnxruntime"):
        default_runtime("cpu", "bf16")


@pytest.mark.parametrize("runtime", ["onnx", "auto"])
def test_an_onnx_file_names_what_runs_it(monkeypatch, tmp_path, runtime):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not read")
    _hide(monkeypatch, "onnxruntime")
    with pytest.raises(ValueError, match=rf"runtime onnx \(ONNX file {path}\) needs onnxruntime \(not installed\): "):
        build_runtime(None, runtime, onnx_path=str(path))


def test_an_onnx_file_needs_no_exporter(monkeypatch, tmp_path):
    # onnxscript writes exports; a given file runs without it (the check asks only for what is used).
    monkeypatch.setattr(fastpath, "OnnxSegmentor", lambda path, **kwargs: nn.Identity())
    monkeypatch.setattr(fastpath, "is_quantized", lambda path: False)
    _hide(monkeypatch, "onnxscript", "openvino")
    runner = build_runtime(None, "onnx", onnx_path=str(tmp_path / "m.onnx"))
    assert fastpath.runtime_label(runner) == "onnx fp32"


def test_export_names_the_package_not_the_model(monkeypatch, tmp_path):
    monkeypatch.setattr(onnx_export, "capture", lambda *a, **k: pytest.fail("captured before the check"))
    _hide(monkeypatch, "onnxscript")
    with pytest.raises(ValueError) as err:
        export_onnx(_model(), str(tmp_path / "m.onnx"))
    message = str(err.value)
    assert "needs onnxscript (not installed)" in message and message.endswith(HINT)
    assert "cannot be translated" not in message and not (tmp_path / "m.onnx").exists()


def test_runners_and_quantization_name_their_packages(monkeypatch, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not read")
    _hide(monkeypatch, "onnxruntime", "openvino")
    with pytest.raises(ValueError, match=f"running {path} needs onnxruntime"):
        OnnxSegmentor(str(path))
    with pytest.raises(ValueError, match=r"runtime openvino \(.*\) needs openvino \(not installed\)"):
        OpenVinoSegmentor(str(path))
    with pytest.raises(ValueError, match="INT8 quantization of .* needs onnxruntime"):
        quantize_int8(str(path), str(tmp_path / "q.onnx"), iter([np.zeros((1, 3, 8, 8), np.float32)]))


def test_the_export_tool_prints_one_line_naming_the_package(monkeypatch, tmp_path, capsys):
    from segkit.config import load_cfg
    from segkit.models import build_model
    from tools.export_onnx import main

    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(f"OUTPUT_DIR: {tmp_path / 'out'}\nMODEL:\n  NAME: bisenetv2\n  NUM_CLASSES: 19\n")
    torch.save(build_model(load_cfg(str(cfg_file))).state_dict(), tmp_path / "w.pth")
    _hide(monkeypatch, "onnxscript")
    assert main(["--config-file", str(cfg_file), "--weights", str(tmp_path / "w.pth"),
                 "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ONNX export") and "onnxscript" in err and err.endswith(HINT)
    assert "\n" not in err and "BiSeNetV2" not in err


def test_an_installed_package_that_does_not_import_is_one_line(tmp_path, monkeypatch):
    """A broken install (here a package whose import raises) is named with its error, not a traceback."""
    from segkit.deploy.runtime import require_packages

    (tmp_path / "segkit_broken_pkg").mkdir()
    (tmp_path / "segkit_broken_pkg" / "__init__.py").write_text("raise ImportError('libfoo.so: cannot open')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _hide(monkeypatch, "segkit_missing_pkg")
    with pytest.raises(ValueError) as err:
        require_packages(("segkit_missing_pkg", "segkit_broken_pkg", "numpy"), "runtime onnx")
    assert str(err.value) == ("runtime onnx needs segkit_missing_pkg (not installed); segkit_broken_pkg (installed, "
                              "but importing it fails: ImportError: libfoo.so: cannot open): " + HINT)
