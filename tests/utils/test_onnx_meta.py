"""The metadata of an ONNX file, read by onnx or, where only the runtime is installed, by onnxruntime."""
import importlib.util

import pytest

from segkit.utils import onnx_meta


@pytest.fixture
def file_with_metadata(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 2, 2])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 2, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    helper.set_model_props(model, {onnx_meta.CONFIG_KEY: "MODEL:\n  NAME: x\n", "other": "1"})
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    return path


def test_read_by_onnx(file_with_metadata):
    assert onnx_meta.onnx_metadata(file_with_metadata) == {"segkit.config": "MODEL:\n  NAME: x\n", "other": "1"}


def test_read_by_onnxruntime_alone_or_by_nothing(file_with_metadata, monkeypatch):
    pytest.importorskip("onnxruntime")
    real = importlib.util.find_spec
    monkeypatch.setattr(onnx_meta.importlib.util, "find_spec", lambda name: None if name == "onnx" else real(name))
    assert onnx_meta.onnx_metadata(file_with_metadata) == {"segkit.config": "MODEL:\n  NAME: x\n", "other": "1"}
    monkeypatch.setattr(onnx_meta.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"reading .*m.onnx needs onnx or onnxruntime \(not installed\): pip install"):
        onnx_meta.onnx_metadata(file_with_metadata)


@pytest.mark.parametrize("content", [b"<html>404 not found</html>", b"\x08\x07\x12\x50pyt"])  # a string cut short
def test_a_missing_or_unreadable_file_is_named(tmp_path, content):
    with pytest.raises(FileNotFoundError, match=f"ONNX file not found: {tmp_path}/absent.onnx"):
        onnx_meta.onnx_metadata(str(tmp_path / "absent.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=rf"cannot load ONNX file {bad} \({len(content)} bytes\): truncated or not"):
        onnx_meta.onnx_metadata(str(bad))
