import os

import cv2
import numpy as np
import pytest
import torch

from segkit.config import get_cfg
from segkit.data import DATASETS, build_dataset, build_test_loader, build_train_loader, generate_demo_dataset
from segkit.data.cityscapes import label_id_to_train_id


@pytest.fixture(scope="module")
def demo_cfg(tmp_path_factory):
    cfg = get_cfg()
    cfg.DATASET.ROOT = str(tmp_path_factory.mktemp("d") / "demo")
    cfg.DATASET.GENERATE_DEMO = True
    cfg.DATASET.DEMO_SIZE = [64, 128]
    cfg.DATASET.DEMO_NUM_TRAIN = 6
    cfg.DATASET.DEMO_NUM_VAL = 3
    cfg.INPUT.CROP_SIZE = [48, 48]
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def test_build_dataset_generates_demo_when_missing(demo_cfg):
    train = build_dataset(demo_cfg, "train")
    val = build_dataset(demo_cfg, "val")
    assert len(train) == 6 and len(val) == 3
    item = val[0]
    assert item["image"].shape == (3, 64, 128) and item["label"].shape == (64, 128)
    assert item["label"].dtype == torch.int64
    assert os.path.basename(item["path"]).startswith(item["name"])
    # The demo shows the big street classes: road, sidewalk, building, sky, car.
    present = set(np.unique(np.concatenate([val[i]["label"].numpy().ravel() for i in range(3)])).tolist())
    assert {0, 1, 2, 10, 13} <= present
    assert train[0]["image"].shape == (3, 48, 48)


def test_demo_train_ids_file_matches_label_ids(demo_cfg):
    build_dataset(demo_cfg, "val")
    ldir = os.path.join(demo_cfg.DATASET.ROOT, "gtFine", "val")
    city = sorted(os.listdir(ldir))[0]
    f = sorted(x for x in os.listdir(os.path.join(ldir, city)) if x.endswith("_labelIds.png"))[0]
    ids = cv2.imread(os.path.join(ldir, city, f), cv2.IMREAD_UNCHANGED)
    tids = cv2.imread(os.path.join(ldir, city, f.replace("labelIds", "labelTrainIds")), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label_id_to_train_id()[ids], tids)


def test_demo_generation_is_deterministic_and_race_safe(tmp_path):
    a = generate_demo_dataset(str(tmp_path / "a"), (64, 96), 2, 1, seed=5)
    generate_demo_dataset(a, (64, 96), 2, 1, seed=5)  # the root exists: the second copy is dropped
    b = generate_demo_dataset(str(tmp_path / "b"), (64, 96), 2, 1, seed=5)
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]  # no temp folder left behind
    rel = "leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png"
    np.testing.assert_array_equal(cv2.imread(os.path.join(a, rel)), cv2.imread(os.path.join(b, rel)))


def test_loaders(demo_cfg):
    it = build_train_loader(demo_cfg)
    for _ in range(3):  # more batches than one epoch of 6 images: the loader never ends
        batch = next(it)
        assert batch["image"].shape == (4, 3, 48, 48) and batch["label"].shape == (4, 48, 48)
        assert batch["label"].dtype == torch.int64 and len(batch["name"]) == 4
    loader = build_test_loader(demo_cfg)
    assert len(loader) == 3
    batch = next(iter(loader))
    assert batch["image"].shape == (1, 3, 64, 128)


def test_unknown_dataset_name(demo_cfg):
    cfg = demo_cfg.clone()
    cfg.DATASET.NAME = "nope"
    with pytest.raises(KeyError, match="nope"):
        build_dataset(cfg, "train")
    assert {"cityscapes", "folder", "camvid"} <= set(DATASETS)
