"""tools/export_onnx.py: the verified file, the INT8 file on the generated demo set, the error exits."""
from __future__ import annotations

import re

import onnx
import pytest
import torch

from segkit.deploy import OnnxSegmentor
from segkit.zoo import resolve_config
from tools.export_onnx import main


def test_export_and_int8_on_the_demo_set(exported, tmp_path, capsys):
    out = tmp_path / "v2.onnx"
    demo = tmp_path / "demo"
    # GENERATE_DEMO: the tool asks for the demo set like every tool does; 64x128 scenes, 3 train images.
    assert main(["--config-file", exported.cfg_file, "--weights", exported.weights, "--out", str(out),
                 "--int8", "--calib-images", "2", "DATASET.ROOT", str(demo), "DATASET.GENERATE_DEMO", "True",
                 "DATASET.DEMO_SIZE", "[64, 128]", "DATASET.DEMO_NUM_TRAIN", "3", "DATASET.DEMO_NUM_VAL", "1"]) == 0
    log = capsys.readouterr().out
    assert "argmax agreement" in log
    # 2 of the 3 training images calibrate; the third is the held-out check of the INT8 file.
    assert re.search(r"INT8 against fp32 on 1 training images not used for calibration \(their views in the "
                     r"config's TEST mode\): argmax agreement "
                     r"\d+\.\d\d%, max \|logit diff\| \S+", log)
    int8 = tmp_path / "v2_int8.onnx"
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    logits = OnnxSegmentor(str(int8), num_classes=19)(torch.randn(1, 3, 64, 128))
    assert logits.shape == (1, 19, 64, 128) and torch.isfinite(logits).all()
    # Both files carry the config they were made with (quantization keeps the metadata).
    for path in (out, int8):
        carried = resolve_config(None, str(path))
        assert carried.MODEL.NAME == "bisenetv2" and carried.INPUT.MEAN == exported.cfg.INPUT.MEAN
        assert carried.DATASET.ROOT == str(demo)


def test_wrong_weights_exit_1_naming_the_file(exported, tmp_path, capsys):
    bad = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    assert main(["--config-file", exported.cfg_file, "--weights", str(bad), "--out", str(tmp_path / "x.onnx")]) == 1
    assert "other.pth" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_int8_with_a_missing_dataset_fails_before_the_export(exported, tmp_path, capsys, monkeypatch):
    import tools.export_onnx as tool

    monkeypatch.setattr(tool, "export_onnx", lambda *a, **k: pytest.fail("exported before checking the data"))
    out = tmp_path / "v2.onnx"
    assert main(["--config-file", exported.cfg_file, "--weights", exported.weights, "--out", str(out), "--int8",
                 "DATASET.ROOT", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.strip() == f"error: Cityscapes root not found: {tmp_path / 'nowhere'} (DATASET.ROOT)"
    assert not out.exists()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["--config-file", exported.cfg_file, "--weights", exported.weights,
                 "--out", str(blocker / "m.onnx")]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write --out {blocker}/m.onnx")


def test_parity_lines_are_logged_once(exported, tmp_path, capsys):
    assert main(["--config-file", exported.cfg_file, "--weights", exported.weights,
                 "--out", str(tmp_path / "a.onnx")]) == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if "argmax agreement" in line]
    assert len(lines) == 2 and len(set(lines)) == 2, printed  # one line per checked size, none repeated


def test_int8_flags_without_int8_are_refused_not_ignored(capsys):
    from tools.export_onnx import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--config-file", "c.yaml", "--weights", "w", "--out", "m.onnx", "--calib-images", "10"])
    assert "--calib-images needs --int8" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--config-file", "c.yaml", "--weights", "w", "--out", "m.onnx", "--int8-ops", "Conv"])
    assert "--int8-ops needs --int8" in capsys.readouterr().err


def test_int8_ops_take_one_comma_list_and_leave_the_overrides_alone(capsys):
    from tools.export_onnx import parse_args

    base = ["--config-file", "c.yaml", "--weights", "w", "--out", "m.onnx", "--int8"]
    args = parse_args(base + ["--int8-ops", "Conv,MatMul", "DATASET.ROOT", "/data"])
    assert args.int8_ops == ["Conv", "MatMul"] and args.opts == ["DATASET.ROOT", "/data"]
    with pytest.raises(SystemExit):
        parse_args(base + ["--int8-ops", "Conv,DATASET.ROOT"])
    assert "not ONNX operator types: 'DATASET.ROOT'" in capsys.readouterr().err
    assert parse_args(["--config-file", "c.yaml", "--weights", "w", "--out", "m.onnx", "--int8"]).calib_images == 100


def test_overrides_may_come_before_and_between_the_flags():
    from tools.export_onnx import parse_args

    args = parse_args(["DATASET.ROOT", "/data", "--weights", "w", "--out", "m.onnx", "SEED", "3", "--int8"])
    assert args.opts == ["DATASET.ROOT", "/data", "SEED", "3"] and args.int8 and args.out == "m.onnx"


@pytest.mark.parametrize("flags, refusal", [
    (["--out", "cp/m.pth"], "--out cp/m.pth is the same file as --weights"),
    (["--out", "m.onnx", "--int8", "--int8-out", "cp/./m.pth"], "--int8-out cp/./m.pth is the same file as --weights"),
    (["--out", "m.onnx", "--int8", "--int8-out", "./m.onnx"], "--int8-out ./m.onnx is the same file as --out"),
])
def test_an_output_onto_an_input_is_refused_before_anything_runs(flags, refusal, tmp_path, capsys, monkeypatch):
    import tools.export_onnx as tool

    monkeypatch.setattr(tool, "resolve_config", lambda *a: pytest.fail("read the weights before checking --out"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cp").mkdir()
    (tmp_path / "cp" / "m.pth").write_bytes(b"checkpoint")
    assert main(["--weights", "cp/m.pth"] + flags) == 1
    flag = refusal.split()[0]
    assert capsys.readouterr().err == (f"error: {refusal}: writing it would overwrite the input; give {flag} "
                                       f"another path\n")
    assert (tmp_path / "cp" / "m.pth").read_bytes() == b"checkpoint"
