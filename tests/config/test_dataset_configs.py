"""The configs of the datasets of issue 26: each loads, builds its model for its dataset's classes, and names
the published figure it aims at (or says that none was found)."""
import glob
import os

import pytest
import torch

from segkit.config import load_cfg
from segkit.data import dataset_classes
from segkit.models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(p for d in ("cocostuff164k", "ade20k", "bdd100k", "mapillary")
                 for p in glob.glob(os.path.join(ROOT, "configs", d, "*.yaml")))


def test_the_asked_configs_exist():
    names = {os.path.relpath(p, os.path.join(ROOT, "configs")) for p in CONFIGS}
    assert {"cocostuff164k/bisenetv1_r18.yaml", "cocostuff164k/bisenetv2.yaml", "ade20k/bisenetv1_r18.yaml",
            "ade20k/bisenetv2.yaml", "ade20k/pidnet_s.yaml", "ade20k/stdc1.yaml", "bdd100k/bisenetv1_r18.yaml",
            "mapillary/bisenetv1_r18_v12.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, os.path.join(ROOT, "configs")) for p in CONFIGS])
def test_config_builds_for_its_dataset(path):
    cfg = load_cfg(path)
    names, _ = dataset_classes(cfg)
    assert cfg.MODEL.NUM_CLASSES == len(names)
    assert not cfg.LOSS.CLASS_WEIGHTS or len(cfg.LOSS.CLASS_WEIGHTS) == len(names)
    with torch.device("meta"):
        out = build_model(cfg).eval()(torch.empty(1, 3, 64, 64))
    assert out.shape == (1, len(names), 64, 64)
    with open(path, encoding="utf-8") as f:
        header = f.read()
    assert "Aims at" in header or "Published figure it aims at" in header


def test_coincheung_recipes():
    # configs/bisenetv{1,2}_{coco,ade20k}.py of CoinCheung/BiSeNet, batch = ims_per_gpu x GPUs of dist_train.sh.
    expected = {
        "cocostuff164k/bisenetv1_r18.yaml": ([512, 512], [0.5, 2.0], 0.01, 90000, 16),
        "cocostuff164k/bisenetv2.yaml": ([640, 640], [0.75, 2.0], 0.005, 180000, 16),
        "ade20k/bisenetv1_r18.yaml": ([512, 512], [0.5, 2.0], 0.04, 40000, 64),
        "ade20k/bisenetv2.yaml": ([640, 640], [0.5, 2.0], 0.005, 160000, 16),
    }
    for name, (crop, scales, lr, iters, batch) in expected.items():
        cfg = load_cfg(os.path.join(ROOT, "configs", name))
        got = (cfg.INPUT.CROP_SIZE, cfg.INPUT.SCALE_RANGE, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER,
               cfg.SOLVER.IMS_PER_BATCH)
        assert got == (crop, scales, lr, iters, batch), name
        assert cfg.SOLVER.WEIGHT_DECAY == 0.0001 and cfg.SOLVER.WARMUP_ITERS == 1000
