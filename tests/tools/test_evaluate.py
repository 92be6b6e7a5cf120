import json
import os
import shutil

import pytest
import torch

from segkit.config import load_cfg
from segkit.data import build_dataset
from segkit.evaluation import evaluate_dataset
from segkit.models import build_model
from tests.evaluation.test_export import make_cityscapes
from tools.evaluate import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaltool")
    root = tmp / "cityscapes"
    make_cityscapes(str(root), n=2, size=(48, 80))
    # The test split: images only, as on the real benchmark.
    shutil.copytree(root / "leftImg8bit" / "val", root / "leftImg8bit" / "test")
    cfg_file = tmp / "cfg.yaml"
    cfg_file.write_text(
        f"OUTPUT_DIR: {tmp / 'out'}\nMODEL:\n  NAME: bisenetv1\nDATASET:\n  ROOT: {root}\n"
        "DATALOADER:\n  NUM_WORKERS: 0\nTEST:\n  CROP_SIZE: [48, 64]\n"
    )
    cfg = load_cfg(str(cfg_file))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    weights = tmp / "model_final.pth"
    torch.save({"model": model.state_dict(), "iteration": 1}, weights)
    return tmp, cfg_file, cfg, model, weights


def test_evaluate_tool_end_to_end(setup, capsys):
    tmp, cfg_file, cfg, model, weights = setup
    out = tmp / "m.json"
    # Small on purpose (2 images, 6 windows each): BiSeNetV1 on CPU is the cost of this test.
    argv = ["--config-file", str(cfg_file), "--weights", str(weights), "--slide", "--scales", "0.5", "1.0",
            "--flip", "--out", str(out), "--save-pred", str(tmp / "pred"), "TEST.BATCH_SIZE", "3"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "traffic light" in printed
    data = json.loads(out.read_text())
    assert data["mode"] == {"scales": [0.5, 1.0], "flip": True, "slide": True, "crop_size": [48, 64],
                            "stride": [32, 43], "batch_size": 3}
    assert set(data["per_class"]["road"]) == {"IoU", "Acc"} and data["num_images"] == 2
    assert len(os.listdir(tmp / "pred" / "labelIds")) == 2 and len(os.listdir(tmp / "pred" / "overlay")) == 2
    # The pictures next to the JSON: a row-normalised confusion matrix and the per-class IoU bars.
    conf = data["confusion_matrix"]
    assert len(conf) == 19 and all(len(r) == 19 for r in conf) and sum(map(sum, conf)) > 0
    for picture in ("m_confusion.png", "m_iou.png"):
        assert os.path.getsize(tmp / picture) > 10_000, picture


def test_tool_equals_library(setup):
    # The tool is a thin wrapper: the library on the same model gives the same figures.
    tmp, cfg_file, cfg, model, weights = setup
    out = tmp / "whole.json"
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--out", str(out),
                 "--runtime", "torch"]) == 0
    direct = evaluate_dataset(model, build_dataset(cfg, "val", train=False), cfg, "cpu")
    data = json.loads(out.read_text())
    assert data["mIoU"] == pytest.approx(direct["mIoU"], abs=1e-9)
    assert data["mode"]["slide"] is False and data["mode"]["scales"] == [1.0]


def test_test_split_saves_predictions_and_default_json(setup):
    tmp, cfg_file, _, _, weights = setup
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--split", "test",
                 "--save-pred", str(tmp / "testpred")]) == 0
    data = json.loads((tmp / "out" / "metrics_eval.json").read_text())
    assert "mIoU" not in data and data["split"] == "test" and data["num_images"] == 2
    assert sorted(os.listdir(tmp / "testpred" / "labelIds"))[0].endswith("_leftImg8bit.png")


def test_weights_of_another_model_are_a_clear_error(setup, capsys):
    tmp, cfg_file, _, _, _ = setup
    other = tmp / "other.pth"
    torch.save({"model": torch.nn.Conv2d(3, 19, 1).state_dict()}, other)
    assert main(["--config-file", str(cfg_file), "--weights", str(other)]) == 1
    assert str(other) in capsys.readouterr().err


def test_demo_config_generates_its_set_first(setup):
    tmp, cfg_file, _, _, weights = setup
    root = tmp / "demo"
    out = tmp / "demo.json"
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--out", str(out),
                 "DATASET.ROOT", str(root), "DATASET.GENERATE_DEMO", "True", "DATASET.DEMO_SIZE", "[32, 64]",
                 "DATASET.DEMO_NUM_TRAIN", "1", "DATASET.DEMO_NUM_VAL", "1"]) == 0
    assert (root / "gtFine" / "val").is_dir() and json.loads(out.read_text())["num_images"] == 1


def test_truncated_weights_are_one_line_also_in_log_txt(setup, capsys):
    tmp, cfg_file, cfg, model, weights = setup
    bad = tmp / "cut.pth"
    bad.write_bytes(weights.read_bytes()[:1000])
    assert main(["--config-file", str(cfg_file), "--weights", str(bad), "OUTPUT_DIR", str(tmp / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "cut.pth is truncated or corrupt" in err and "\n" not in err
    assert "cut.pth is truncated or corrupt" in (tmp / "o" / "log.txt").read_text()


def test_flags_after_overrides(setup):
    tmp, cfg_file, cfg, model, weights = setup
    out = tmp / "any_order.json"
    argv = ["--config-file", str(cfg_file), "OUTPUT_DIR", str(tmp / "x"), "--flip", "--scales", "0.5", "1.0",
            "TEST.BATCH_SIZE", "2", "--weights", str(weights), "--out", str(out)]
    assert main(argv) == 0
    assert json.loads(out.read_text())["mode"]["flip"] is True


def test_onnx_file_gives_the_pytorch_table_and_a_foreign_file_is_named(setup, capsys):
    from tools.export_onnx import main as export_main

    tmp, cfg_file, cfg, model, weights = setup
    onnx = tmp / "model.onnx"
    assert export_main(["--config-file", str(cfg_file), "--weights", str(weights), "--out", str(onnx)]) == 0
    torch_json, onnx_json = tmp / "torch.json", tmp / "onnx.json"
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--runtime", "torch", "--flip",
                 "--out", str(torch_json)]) == 0
    assert main(["--config-file", str(cfg_file), "--onnx", str(onnx), "--flip", "--out", str(onnx_json)]) == 0
    a, b = json.loads(torch_json.read_text()), json.loads(onnx_json.read_text())
    assert b["runtime"] == "onnx" and b["mode"] == a["mode"]
    assert abs(a["mIoU"] - b["mIoU"]) <= 0.05
    capsys.readouterr()
    assert main(["--config-file", str(cfg_file), "--onnx", str(onnx), "MODEL.NUM_CLASSES", "11",
                 "DATASET.NAME", "camvid"]) == 1
    err = capsys.readouterr().err
    assert "model.onnx" in err and "19" in err and "11" in err


def test_runtime_other_than_onnx_with_an_onnx_file_is_refused(capsys):
    from tools.evaluate import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--config-file", "c.yaml", "--onnx", "m.onnx", "--runtime", "torch"])
    assert "--runtime torch applies to --weights" in capsys.readouterr().err
    assert parse_args(["--config-file", "c.yaml", "--onnx", "m.onnx"]).runtime == "auto"


def test_lossy_precision_runs_only_when_asked_and_the_json_says_what_ran(setup, capsys):
    pytest.importorskip("openvino")
    tmp, cfg_file, cfg, model, weights = setup
    exact, lossy = tmp / "exact.json", tmp / "int8.json"
    common = ["--config-file", str(cfg_file), "--weights", str(weights), "--split", "val"]
    assert main([*common, "--out", str(exact)]) == 0
    # Calibration reads DATASET.TRAIN_SPLIT; this tiny set has val (and test) only.
    assert main([*common, "--runtime", "openvino", "--precision", "int8", "--calib-images", "2",
                 "--out", str(lossy), "DATASET.TRAIN_SPLIT", "val"]) == 0
    a, b = json.loads(exact.read_text()), json.loads(lossy.read_text())
    assert (a["runtime"], a["precision"]) in (("onnx", "fp32"), ("fused", "fp32"))  # auto: exact
    assert (b["runtime"], b["precision"]) == ("openvino", "int8") and b["num_images"] == a["num_images"]
    capsys.readouterr()
    assert main([*common, "--runtime", "torch", "--precision", "bf16"]) == 1
    assert "runtime torch has no precision bf16" in capsys.readouterr().err
