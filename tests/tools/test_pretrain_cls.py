import glob
import importlib.util
import json
import os

import pytest
import torch

from segkit.config import get_cfg, get_cls_cfg, load_cfg
from segkit.models.backbones import BACKBONES, build_backbone, list_backbones
from segkit.models.classifier import create_classifier
from segkit.pretrain import export_backbone
from tests.pretrain.test_trainer import CLASSES, TinyBackbone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def tiny_backbone(monkeypatch):
    monkeypatch.setitem(BACKBONES, "tiny_test", TinyBackbone)


def _config(tmp_path, data):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"OUTPUT_DIR: {tmp_path / 'out'}\n"
        f"MODEL: {{NAME: tiny_test, NUM_CLASSES: {len(CLASSES)}}}\n"
        f"DATASET: {{ROOT: {data}, GENERATE_DEMO: true, DEMO_TRAIN_PER_CLASS: 8, DEMO_VAL_PER_CLASS: 4, DEMO_SIZE: 32,"
        f" DEMO_NUM_CLASSES: {len(CLASSES)}}}\n"
        "INPUT: {TRAIN_SIZE: 32, VAL_SIZE: 32}\n"
        "SOLVER: {IMS_PER_BATCH: 8, EPOCHS: 1, WARMUP_EPOCHS: 0}\n"
        "DATALOADER: {NUM_WORKERS: 0}\n"
    )
    return str(path)


def test_pretrain_eval_and_export_tools(tmp_path, capsys):
    data = tmp_path / "data"
    cfg_file = _config(tmp_path, data)
    pretrain = _tool("pretrain_cls")
    assert pretrain.main(["--config-file", cfg_file]) == 0
    out = tmp_path / "out"
    assert (data / "train").is_dir()  # GENERATE_DEMO wrote the set
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["epoch"] == 1 and 0.0 <= metrics["top1"] <= 100.0 and metrics["ema_top1"] is not None
    assert "epoch 1/1" in (out / "log.txt").read_text() and "eta" in (out / "log.txt").read_text()

    capsys.readouterr()
    assert pretrain.main(["--config-file", cfg_file, "--eval-only", "--weights", str(out / "model_best.pth")]) == 0
    printed = capsys.readouterr().out
    assert "top-1" in printed and "top-5" in printed
    top1 = float(printed.split("top-1")[-1].split()[0])
    assert top1 == pytest.approx(json.load(open(out / "metrics.json"))["top1"], abs=1e-2)
    assert pretrain.main(["--config-file", cfg_file, "--eval-only", "--ema", "--weights", str(out / "model_final.pth")]) == 0
    printed = capsys.readouterr().out
    assert "model_final.pth (EMA) on" in printed
    assert float(printed.split("top-1")[-1].split()[0]) == pytest.approx(metrics["ema_top1"], abs=1e-2)

    export = _tool("export_backbone")
    assert export.main([str(out / "model_final.pth"), str(tmp_path / "bb.pth"), "--ema"]) == 0
    state = torch.load(tmp_path / "bb.pth", weights_only=True)
    assert not build_backbone("tiny_test").load_state_dict(state, strict=True).missing_keys
    assert export.main([str(tmp_path / "bb.pth"), str(tmp_path / "bb2.pth")]) == 1  # a backbone is no classifier
    assert "not a segkit classifier" in capsys.readouterr().err


def test_tool_errors_name_the_fault(tmp_path, capsys):
    pretrain = _tool("pretrain_cls")
    cfg_file = _config(tmp_path, tmp_path / "data")
    assert pretrain.main(["--config-file", cfg_file, "SOLVER.NO_SUCH_KEY", "1"]) == 1
    assert "SOLVER.NO_SUCH_KEY" in capsys.readouterr().err
    assert pretrain.main(["--config-file", cfg_file, "--eval-only"]) == 1
    assert "--weights" in capsys.readouterr().err
    assert pretrain.main(["--config-file", cfg_file, "--ema"]) == 1
    assert "--ema chooses the weights --eval-only evaluates" in capsys.readouterr().err
    assert pretrain.main(["--config-file", cfg_file, "DATASET.GENERATE_DEMO", "False"]) == 1
    assert "image folder not found" in capsys.readouterr().err


def test_zoo_export_loads_with_no_missing_key(tmp_path):
    # The real resnet18 and efficientnet_b0: pre_logits weights (EfficientNet's head conv) stay out of the export.
    for name in ("resnet18", "efficientnet_b0"):
        clf = create_classifier(name, num_classes=5)
        torch.save({"kind": "classifier", "model": clf.state_dict()}, tmp_path / "c.pth")
        state = export_backbone(str(tmp_path / "c.pth"), str(tmp_path / "b.pth"))
        result = build_backbone(name).load_state_dict(torch.load(tmp_path / "b.pth", weights_only=True), strict=True)
        assert not result.missing_keys and not result.unexpected_keys
        assert all(torch.equal(v, clf.backbone.state_dict()[k]) for k, v in state.items())


def test_shipped_configs_load():
    files = sorted(glob.glob(os.path.join(ROOT, "configs", "imagenet", "*.yaml")))
    names = {os.path.basename(f) for f in files}
    assert {"resnet50.yaml", "resnet50d.yaml", "resnet101.yaml", "efficientnet_b0.yaml", "efficientnet_b2.yaml",
            "xception41.yaml", "xception65.yaml"} <= names
    for f in files + [os.path.join(ROOT, "configs", "demo", "pretrain_demo.yaml")]:
        cfg = load_cfg(f, defaults=get_cls_cfg)
        assert cfg.MODEL.NAME in list_backbones(), f
    seg = load_cfg(os.path.join(ROOT, "configs", "demo", "bisenetv1_pretrained_demo.yaml"), defaults=get_cfg)
    assert seg.MODEL.BACKBONE.WEIGHTS == "output/pretrain_demo/backbone_final.pth"
    assert seg.MODEL.BACKBONE.NAME == load_cfg(os.path.join(ROOT, "configs", "demo", "pretrain_demo.yaml"),
                                               defaults=get_cls_cfg).MODEL.NAME


def test_unwritable_output_dir_fails_before_the_data_is_built(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg_file = _config(tmp_path, tmp_path / "data")
    assert _tool("pretrain_cls").main(["--config-file", cfg_file, "OUTPUT_DIR", str(blocker)]) == 1
    assert capsys.readouterr().err.strip() == f"error: OUTPUT_DIR {blocker} is a file, not a folder"
    assert not (tmp_path / "data").exists()


def test_export_backbone_to_an_unwritable_path_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert _tool("export_backbone").main([str(tmp_path / "absent.pth"), str(blocker / "bb.pth")]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write OUT {blocker}/bb.pth: ")


def test_unreadable_jpegs_are_all_named_before_training(tmp_path, capsys):
    from segkit.config import load_cfg as load
    from segkit.pretrain.demo import ensure_demo_cls_dataset

    cfg_file = _config(tmp_path, tmp_path / "data")
    ensure_demo_cls_dataset(load(cfg_file, defaults=get_cls_cfg))
    images = sorted(glob.glob(str(tmp_path / "data" / "train" / "*" / "*")))
    cut, garbage = images[3], images[-1]
    data = open(cut, "rb").read()
    open(cut, "wb").write(data[: len(data) - 20])  # a copy that stopped early
    open(garbage, "wb").write(b"<html>not an image</html>")
    assert _tool("pretrain_cls").main(["--config-file", cfg_file]) == 1
    err = capsys.readouterr().err
    error = ("\n" + err)[("\n" + err).rindex("\nerror: ") + 1:]  # (an earlier test's logger may print before it)
    assert error.startswith(f"error: 2 unreadable or truncated image(s) in {tmp_path / 'data' / 'train'}")
    assert cut in error and garbage in error and "Traceback" not in error and "worker" not in error
    assert not glob.glob(str(tmp_path / "out" / "model_*.pth"))
