"""An output path that is the tool's own input is refused before anything is written: the input survives."""
from __future__ import annotations

import os

import pytest
import torch

from segkit.models.classifier import create_classifier
from tools import convert_weights, export_backbone


def _refused(capsys, out_flag: str, path, in_flag: str) -> None:
    assert capsys.readouterr().err == (f"error: {out_flag} {path} is the same file as {in_flag}: writing it would "
                                       f"overwrite the input; give {out_flag} another path\n")


def test_export_backbone_onto_its_checkpoint(tmp_path, capsys, monkeypatch):
    ckpt = tmp_path / "a" / "model_final.pth"
    ckpt.parent.mkdir()
    torch.save({"kind": "classifier", "model": create_classifier("resnet18", num_classes=5).state_dict()}, ckpt)
    before = ckpt.read_bytes()
    assert export_backbone.main([str(ckpt), str(ckpt)]) == 1
    _refused(capsys, "OUT", ckpt, "CKPT")
    monkeypatch.chdir(tmp_path)
    os.link(ckpt, tmp_path / "hard.pth")  # another name of the same file
    assert export_backbone.main(["a/model_final.pth", "hard.pth"]) == 1
    _refused(capsys, "OUT", "hard.pth", "CKPT")
    assert ckpt.read_bytes() == before


def test_convert_weights_onto_its_source(tmp_path, capsys):
    torchvision = pytest.importorskip("torchvision")
    src = tmp_path / "tv.pth"
    torch.save(torchvision.models.resnet18().state_dict(), src)
    before = src.read_bytes()
    assert convert_weights.main(["--from", "torchvision", "--model", "resnet18", "--src", str(src),
                                 "--dst", f"{tmp_path}/sub/../tv.pth"]) == 1
    _refused(capsys, "--dst", f"{tmp_path}/sub/../tv.pth", "--src")
    assert src.read_bytes() == before


def test_evaluate_onto_its_weights(tmp_path, capsys):
    from tools import evaluate

    weights = tmp_path / "model_final.pth"
    weights.write_bytes(b"a checkpoint")
    assert evaluate.main(["--config-file", "configs/demo/bisenetv1_demo.yaml", "--weights", str(weights),
                          "--out", str(weights), "OUTPUT_DIR", str(tmp_path)]) == 1
    _refused(capsys, "--out", weights, "--weights")
    assert weights.read_bytes() == b"a checkpoint"
