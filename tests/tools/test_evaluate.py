import json
import os
import shutil

import pytest
import torch

from segkit.config import load_cfg
from segkit.data import build_dataset
from segkit.evaluation import InferenceMode, evaluate_dataset
from segkit.models import build_model
from tests.evaluation.test_prediction_files import make_cityscapes
from tools import evaluate as evaluate_tool
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
    # The tool is a thin wrapper: by default (the PyTorch model, as the trainer evaluates it) the library on
    # the same model gives the same figures.
    tmp, cfg_file, cfg, model, weights = setup
    out = tmp / "whole.json"
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--out", str(out)]) == 0
    direct = evaluate_dataset(model, build_dataset(cfg, "val", train=False), cfg, "cpu")
    data = json.loads(out.read_text())
    assert data["mIoU"] == pytest.approx(direct["mIoU"], abs=1e-9)
    assert data["mode"]["slide"] is False and data["mode"]["scales"] == [1.0] and data["runtime"] == "torch"


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


@pytest.mark.parametrize("error", ["ExportError", "ParityError"])
def test_an_export_that_fails_or_disagrees_is_one_line(setup, capsys, monkeypatch, error):
    import segkit.deploy as deploy
    import segkit.deploy.fastpath as fastpath

    tmp, cfg_file, _, _, weights = setup

    def fail(*args, **kwargs):
        raise getattr(deploy, error)("the export of BiSeNetV1 disagrees at 1x3x96x160")

    monkeypatch.setattr(fastpath, "_exported_runtime", fail)
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--runtime", "onnx"]) == 1
    assert capsys.readouterr().err == "error: the export of BiSeNetV1 disagrees at 1x3x96x160\n"


def test_a_bad_test_setting_is_refused_before_the_weights_are_read(setup, capsys):
    tmp, cfg_file, _, _, _ = setup
    assert main(["--config-file", str(cfg_file), "--weights", str(tmp / "missing.pth"), "TEST.SIZE_DIVISOR", "0"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: TEST.SIZE_DIVISOR must be >= 1, got 0"


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
    # The file carries the config it was exported with: it runs alone, and a config normalising otherwise is
    # refused (the file's input is normalised outside its graph).
    alone_json = tmp / "alone.json"
    assert main(["--onnx", str(onnx), "--flip", "--out", str(alone_json)]) == 0
    assert json.loads(alone_json.read_text())["mIoU"] == b["mIoU"]
    assert main(["--config-file", str(cfg_file), "--onnx", str(onnx), "INPUT.STD", "[1.0, 1.0, 1.0]"]) == 1
    assert f"builds another model than {onnx} holds" in capsys.readouterr().err


def test_runtime_other_than_onnx_with_an_onnx_file_is_refused(capsys):
    from tools.evaluate import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--config-file", "c.yaml", "--onnx", "m.onnx", "--runtime", "torch"])
    assert "--runtime torch applies to --weights" in capsys.readouterr().err
    assert parse_args(["--config-file", "c.yaml", "--onnx", "m.onnx", "--runtime", "auto"]).onnx == "m.onnx"


def test_cityscapes_model_on_another_dataset(setup, tmp_path, monkeypatch, capsys):
    from tests.data.tiny import write_tiny_dataset

    tmp, cfg_file, cfg, model, weights = setup
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    bdd = write_tiny_dataset("bdd100k", tmp_path / "bdd100k")
    out = tmp_path / "bdd.json"
    common = ["--config-file", str(cfg_file), "--weights", str(weights), "--runtime", "torch", "--out", str(out),
              "MODEL.TRAINED_ON", "cityscapes", "DATASET.ROOT", bdd.DATASET.ROOT, "TEST.SCALE", "0.5"]
    assert main([*common, "DATASET.NAME", "bdd100k"]) == 0
    data = json.loads(out.read_text())
    assert data["trained_on"] == "cityscapes" and data["evaluated_on"] == "bdd100k" and data["num_images"] == 2
    assert "model trained on cityscapes, evaluated on bdd100k val" in capsys.readouterr().out
    ade = write_tiny_dataset("ade20k", tmp_path / "ade")
    common[common.index("DATASET.ROOT") + 1] = ade.DATASET.ROOT
    assert main([*common, "DATASET.NAME", "ade20k"]) == 1
    err = capsys.readouterr().err
    assert "trained on Cityscapes (19 classes: road," in err and "on ADE20K (150 classes: wall," in err


def test_unwritable_outputs_fail_before_the_evaluation(setup, capsys, monkeypatch):
    import tools.evaluate as tool

    tmp, cfg_file, cfg, model, weights = setup
    monkeypatch.setattr(tool, "evaluate_dataset", lambda *a, **k: pytest.fail("evaluated before checking --out"))
    blocker = tmp / "a_file"
    blocker.write_text("a file where a folder is needed")
    base = ["--config-file", str(cfg_file), "--weights", str(weights), "--runtime", "torch"]
    assert main(base + ["--out", str(blocker / "m.json")]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write --out {blocker}/m.json: ")
    assert main(base + ["--out", str(tmp / "ok.json"), "--save-pred", str(blocker)]) == 1
    assert capsys.readouterr().err.strip() == f"error: --save-pred {blocker} is a file, not a folder"
    assert not (tmp / "ok.json").exists()


@pytest.mark.parametrize("damage", ["truncated", "not onnx"])
def test_a_corrupt_onnx_file_is_one_line_naming_it(setup, capsys, damage):
    tmp, cfg_file, cfg, model, weights = setup
    bad = tmp / f"{damage.replace(' ', '_')}.onnx"
    bad.write_bytes(b"\x08\x07\x12\x07pytorch" if damage == "truncated" else b"<html>404 not found</html>")
    assert main(["--config-file", str(cfg_file), "--onnx", str(bad), "--out", str(tmp / "n.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot load ONNX file {bad} (") and "\n" not in err
    assert not (tmp / "n.json").exists()


def test_an_image_that_does_not_decode_is_one_line_naming_it(setup, tmp_path, capsys):
    import glob

    import cv2
    import numpy as np

    tmp, cfg_file, cfg, model, weights = setup
    root = tmp_path / "cityscapes"
    shutil.copytree(tmp / "cityscapes", root)
    image = sorted(glob.glob(str(root / "leftImg8bit" / "val" / "*" / "*.png")))[0]
    h, w = cv2.imread(image).shape[:2]
    data = bytearray(cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8))[1])
    data[60:-40] = b"\x55" * (len(data) - 100)  # header and end intact, pixel data garbage
    open(image, "wb").write(bytes(data))
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--runtime", "torch",
                 "DATASET.ROOT", str(root), "OUTPUT_DIR", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    error = ("\n" + err)[("\n" + err).rindex("\nerror: ") + 1:].strip()
    assert error == f"error: cannot read image {image}"


def test_slide_with_windows_larger_than_the_images_equals_whole_image(setup):
    # The demo case: TEST.CROP_SIZE larger than every image. The window is clamped to the image (as in
    # mmsegmentation), so sliding gives the whole-image figures instead of zero-padding the images.
    tmp, cfg_file, cfg, model, weights = setup
    base = ["--config-file", str(cfg_file), "--weights", str(weights), "--runtime", "torch"]
    assert main(base + ["--out", str(tmp / "whole_big.json")]) == 0
    assert main(base + ["--slide", "--out", str(tmp / "slide_big.json"), "TEST.CROP_SIZE", "[160, 256]"]) == 0
    whole, slide = (json.loads((tmp / f).read_text()) for f in ("whole_big.json", "slide_big.json"))
    assert slide["mode"]["slide"] and slide["mode"]["crop_size"] == [160, 256]
    assert slide["confusion_matrix"] == whole["confusion_matrix"]


def test_lossy_precision_runs_only_when_asked_and_the_json_says_what_ran(setup, capsys):
    pytest.importorskip("openvino")
    tmp, cfg_file, cfg, model, weights = setup
    exact, lossy = tmp / "exact.json", tmp / "int8.json"
    common = ["--config-file", str(cfg_file), "--weights", str(weights), "--split", "val"]
    assert main([*common, "--out", str(exact)]) == 0
    # Calibration reads DATASET.TRAIN_SPLIT; this tiny set has val (and test) only.
    assert main([*common, "--runtime", "openvino", "--precision", "int8", "--calib-images", "2", "--int8-ops", "Conv",
                 "--out", str(lossy), "DATASET.TRAIN_SPLIT", "val"]) == 0
    a, b = json.loads(exact.read_text()), json.loads(lossy.read_text())
    assert (a["runtime"], a["precision"]) == ("torch", "fp32")  # the default: the model's own number
    assert (b["runtime"], b["precision"]) == ("openvino", "int8") and b["num_images"] == a["num_images"]
    assert b["int8_ops"] == ["Conv"] and "int8_ops" not in a
    capsys.readouterr()
    assert main([*common, "--runtime", "torch", "--precision", "bf16"]) == 1
    assert "runtime torch has no precision bf16" in capsys.readouterr().err


def test_the_mode_checked_at_start_is_the_one_evaluated(setup, monkeypatch):
    tmp, cfg_file, cfg, model, weights = setup
    seen = {}

    def evaluate(*args, mode=None, **kwargs):
        seen["mode"] = mode
        return evaluate_dataset(*args, mode=mode, **kwargs)

    monkeypatch.setattr(evaluate_tool, "evaluate_dataset", evaluate)
    assert main(["--config-file", str(cfg_file), "--weights", str(weights), "--flip", "--scales", "0.5", "1.0",
                 "--out", str(tmp / "once.json")]) == 0
    assert seen["mode"] == InferenceMode.from_config(cfg, flip=True, scales=[0.5, 1.0], device="cpu")

