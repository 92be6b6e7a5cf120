"""Weights by every name: zoo:NAME through the tools and the Predictor, official files by path (detected,
converted, logged, class order fixed; refused with the keys that did not fit), tools/zoo.py convert and list."""
import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

import segkit
from segkit.engine.seg_trainer import SegTrainer
from segkit.utils.checkpoint import SEGMENTOR_KIND, CheckpointError, load_checkpoint, model_entries
from segkit.zoo import ENTRIES, convert_entry_file, is_segkit_checkpoint, load_model_for_inference, read_weights
from tests.zoo.conftest import NAME, official_file
from tools import evaluate, predict, zoo as zoo_tool


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_zoo_name_loads_the_converted_file_with_a_log_line(zoo, segkit_log):
    entry, cfg, model = zoo
    loaded = load_model_for_inference(cfg, f"zoo:{NAME}")
    assert same_weights(loaded, model)
    assert "official fake checkpoint (tests (a throwaway format)) of tinyseg with 19 classes" in segkit_log.text


def test_predictor_from_pretrained_equals_the_model(zoo):
    entry, cfg, model = zoo
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    predictor = segkit.Predictor.from_pretrained(NAME, runtime="torch")
    expected = segkit.Predictor(cfg, model)(image)
    assert np.array_equal(predictor(image), expected)
    assert predictor.class_names[0] == "road"  # from the dataset the entry's config names


def test_evaluate_and_predict_take_the_config_from_the_entry(zoo, tmp_path):
    entry, cfg, model = zoo
    out = tmp_path / "m.json"
    assert evaluate.main(["--weights", f"zoo:{NAME}", "--runtime", "torch", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["weights"] == f"zoo:{NAME}" and metrics["num_images"] == 2
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((40, 56, 3), np.uint8))
    assert predict.main(["--weights", f"zoo:{NAME}", "--runtime", "torch", "--input", str(image),
                         "--out", str(tmp_path / "pred")]) == 0
    assert cv2.imread(str(tmp_path / "pred" / "trainIds" / "frame.png"), cv2.IMREAD_UNCHANGED).shape == (40, 56)


def test_official_file_by_path_is_detected(zoo, tmp_path, segkit_log):
    entry, cfg, model = zoo
    path = official_file(model.state_dict(), tmp_path / "published.pth")
    predictor = segkit.Predictor.from_checkpoint(str(path), runtime="torch")  # config: the entry of the format
    assert same_weights(predictor.model, model)
    assert f"{path}: official fake checkpoint" in segkit_log.text


def test_file_of_no_format_is_refused_naming_the_keys(zoo, tmp_path):
    entry, cfg, model = zoo
    path = tmp_path / "other.pth"
    torch.save({"encoder.stem.weight": torch.zeros(3), "decoder.fc.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match=r"neither segkit weights of model bisenetv1 nor a checkpoint in an "
                                              r"official format: no official format fits: keys \['encoder.stem"):
        load_model_for_inference(cfg, str(path))


def test_segkit_checkpoints_still_load_as_they_are(zoo, tmp_path):
    entry, cfg, model = zoo
    path = tmp_path / "native.pth"
    torch.save(model.state_dict(), path)
    assert same_weights(load_model_for_inference(cfg, str(path)), model)


def test_convert_writes_a_checkpoint_that_carries_its_config(zoo, tmp_path, capsys):
    entry, cfg, model = zoo
    src = official_file(model.state_dict(), tmp_path / "by_hand.pth")
    out = tmp_path / "converted.pth"
    assert zoo_tool.main(["convert", NAME, "--src", str(src), "--out", str(out)]) == 0
    ckpt = load_checkpoint(str(out))
    assert is_segkit_checkpoint(ckpt) and ckpt["zoo"] == NAME
    predictor = segkit.Predictor.from_checkpoint(str(out), runtime="torch")
    assert same_weights(predictor.model, model) and predictor.cfg.MODEL.NUM_CLASSES == 19


def test_convert_refuses_a_file_of_another_model(zoo, tmp_path, capsys):
    entry, cfg, model = zoo
    src = tmp_path / "half.pth"
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("aux16.")}
    official_file(state, src)
    src_bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"net.head.classifier.weight": torch.zeros(19, 4, 1, 1), "x": torch.zeros(1)}}, src_bad)
    assert zoo_tool.main(["convert", NAME, "--src", str(src_bad), "--out", str(tmp_path / "o.pth")]) == 1
    assert capsys.readouterr().err.startswith(f"error: --src {src_bad}: no official format fits: keys ['x'] fit no ")
    assert zoo_tool.main(["convert", NAME, "--src", str(src), "--out", str(tmp_path / "o.pth")]) == 1
    assert "missing keys ['aux16." in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()


def test_convert_checks_out_before_converting(zoo, tmp_path, capsys, monkeypatch):
    entry, cfg, model = zoo
    src = official_file(model.state_dict(), tmp_path / "by_hand.pth")
    before = src.read_bytes()
    monkeypatch.setattr(zoo_tool, "convert_entry_file", lambda *a: pytest.fail("converted before checking --out"))
    folder = tmp_path / "existing"
    folder.mkdir()
    assert zoo_tool.main(["convert", NAME, "--src", str(src), "--out", str(folder)]) == 1
    assert capsys.readouterr().err == f"error: --out {folder} is a folder: give a file path\n"
    assert zoo_tool.main(["convert", NAME, "--src", str(src), "--out", str(src)]) == 1
    assert capsys.readouterr().err == (f"error: --out {src} is the same file as --src: writing it would overwrite "
                                       f"the input; give --out another path\n")
    assert src.read_bytes() == before


def test_list_shows_every_entry_and_what_is_cached(zoo, capsys):
    assert zoo_tool.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "model", "dataset", "published", "mIoU", "protocol", "params", "(M)",
                                "licence", "cached"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == set(ENTRIES)
    assert rows[NAME].split()[-1] == "yes" and rows["pidnet_s_cityscapes"].split()[-1] == "no"
    assert " 78.80 " in rows["pidnet_s_cityscapes"] and " 7.72 " in rows["pidnet_s_cityscapes"]
    assert zoo_tool.main(["show", "pidnet_s_camvid"]) == 0
    shown = capsys.readouterr().out
    assert "Bicyclist (0, 128, 192)" in shown and "PIDNet_S_Camvid_Test.pt" in shown


def test_export_onnx_takes_a_zoo_name_alone(zoo, tmp_path):
    from tools import export_onnx

    out = tmp_path / "tiny.onnx"
    assert export_onnx.main(["--weights", f"zoo:{NAME}", "--out", str(out)]) == 0
    assert out.is_file()


def test_converted_file_has_the_trainers_layout_and_warns_of_another_release(zoo, tmp_path, segkit_log, monkeypatch):
    entry, cfg, model = zoo
    src = official_file(model.state_dict(), tmp_path / "by_hand.pth")
    monkeypatch.setitem(ENTRIES, NAME, dataclasses.replace(entry, sha256="0123abcd"))
    out = tmp_path / "converted.pth"
    state = convert_entry_file(ENTRIES[NAME], str(src), str(out))
    ckpt = load_checkpoint(str(out))
    expected = {**model_entries(state, cfg, SEGMENTOR_KIND), "zoo": NAME, "source": entry.url}
    assert list(ckpt) == list(expected)
    assert all(ckpt[k] == v for k, v in expected.items() if k != "model")
    assert all(torch.equal(ckpt["model"][k], v) for k, v in model.state_dict().items())
    assert ckpt["kind"] == SegTrainer.CHECKPOINT_KIND and ckpt["model_name"] == "bisenetv1"
    assert f"{src} does not have the published SHA-256 prefix 0123abcd of tiny_official.pth" in segkit_log.text
