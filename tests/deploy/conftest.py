"""One exported model for the runtime, INT8 and Predictor tests: BiSeNetV2 (no zoo backbone to register),
its config file, weights and parity-checked ONNX file, built once per session."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from segkit.config import load_cfg
from segkit.deploy import export_onnx
from segkit.models import build_model

# Odd sizes, neither multiples of the network stride nor of each other.
CHECK_SIZES = ((67, 93), (100, 141))
MEAN, STD = [0.3, 0.4, 0.5], [0.2, 0.25, 0.3]  # not the defaults: the code must take the config's


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("deploy")
    cfg_file = tmp / "cfg.yaml"
    cfg_file.write_text(f"OUTPUT_DIR: {tmp / 'out'}\nMODEL:\n  NAME: bisenetv2\n  NUM_CLASSES: 19\n"
                        f"INPUT:\n  MEAN: {MEAN}\n  STD: {STD}\nTEST:\n  CROP_SIZE: [64, 96]\n  BATCH_SIZE: 2\n"
                        "DATALOADER:\n  NUM_WORKERS: 0\n")
    cfg = load_cfg(str(cfg_file))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    weights = tmp / "model.pth"
    torch.save(model.state_dict(), weights)
    onnx_path = tmp / "model.onnx"
    results = export_onnx(model, str(onnx_path), check_sizes=CHECK_SIZES, num_classes=19)
    return SimpleNamespace(tmp=tmp, cfg_file=str(cfg_file), cfg=cfg, model=model, weights=str(weights),
                           onnx=str(onnx_path), results=results)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # The ONNX export cache (and the label cache) in the session's temp folder, shared by its tests.
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path_factory.getbasetemp() / "segkit-cache"))
