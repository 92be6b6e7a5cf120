"""The Imagenette recipes build their real models and train a step on generated data, and every segmentation
config on a zoo backbone names the pretrained weights it expects with the command that makes them."""
from __future__ import annotations

import glob
import os
import re

import pytest

from segkit.config import get_cfg, get_cls_cfg, load_cfg
from segkit.pretrain import ClsTrainer, make_demo_cls_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES = sorted(glob.glob(os.path.join(ROOT, "configs", "imagenette", "*.yaml")))


@pytest.fixture(scope="module")
def ten_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenette_like")
    return make_demo_cls_dataset(str(root), num_classes=10, train_per_class=2, val_per_class=1, size=40)


def test_recipes_exist() -> None:
    assert {os.path.basename(f) for f in RECIPES} >= {"resnet18.yaml", "bisenetv2.yaml"}


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_recipe_trains_one_step_on_generated_data(path: str, ten_classes: str, tmp_path) -> None:
    # The recipe as shipped, shrunk only in size and length: its model, optimizer, EMA and augmentation run.
    cfg = load_cfg(path, ["DATASET.ROOT", ten_classes, "OUTPUT_DIR", str(tmp_path), "INPUT.TRAIN_SIZE", "64",
                          "INPUT.VAL_SIZE", "64", "SOLVER.EPOCHS", "1", "SOLVER.IMS_PER_BATCH", "20",
                          "DATALOADER.NUM_WORKERS", "0"], defaults=get_cls_cfg)
    assert cfg.MODEL.NUM_CLASSES == 10
    result = ClsTrainer(cfg).train()
    assert result["epoch"] == 1 and 0.0 <= result["top1"] <= 100.0
    assert os.path.isfile(os.path.join(str(tmp_path), "backbone_final.pth"))


def _config_text_chain(path: str) -> str:
    """The file's text and its _BASE_ ancestors'."""
    text = open(path).read()
    base = re.search(r"^_BASE_:\s*(\S+)", text, re.M)
    return text + ("" if base is None else _config_text_chain(os.path.join(os.path.dirname(path), base.group(1))))


ZOO_SEG_CONFIGS = [
    f for f in sorted(glob.glob(os.path.join(ROOT, "configs", "c*", "*.yaml")))
    if load_cfg(f, defaults=get_cfg).MODEL.NAME in ("bisenetv1", "bisenetv2", "fcn", "pspnet", "deeplabv3plus", "stdc")
]


@pytest.mark.parametrize("path", ZOO_SEG_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_segmentation_configs_name_their_backbone_weights(path: str) -> None:
    cfg = load_cfg(path, defaults=get_cfg)
    text = _config_text_chain(path)
    line = re.search(r"#\s*WEIGHTS:\s*(\S+)", text)
    assert cfg.MODEL.BACKBONE.WEIGHTS or line, f"{path}: no MODEL.BACKBONE.WEIGHTS line"
    # The command that produces the file is given, with a recipe or converter that exists.
    tools = re.findall(r"python (tools/\w+\.py)", text)
    assert tools and all(os.path.isfile(os.path.join(ROOT, t)) for t in tools), path
    for recipe in re.findall(r"--config-file (configs/\S+\.yaml)", text):
        assert os.path.isfile(os.path.join(ROOT, recipe)), f"{path} names a missing recipe {recipe}"
    if "--from" in text:
        assert f"--model {cfg.MODEL.BACKBONE.NAME}" in text, path
