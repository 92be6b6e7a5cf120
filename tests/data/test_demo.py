import os

import cv2
import numpy as np
import pytest

from segkit.config import get_cfg
from segkit.data import build_dataset, generate_demo_dataset
from segkit.data.cityscapes import label_id_to_train_id
from segkit.data.demo import ensure_demo_dataset


@pytest.fixture(scope="module")
def demo_cfg(tmp_path_factory):
    cfg = get_cfg()
    cfg.DATASET.ROOT = str(tmp_path_factory.mktemp("d") / "demo")
    cfg.DATASET.GENERATE_DEMO = True
    cfg.DATASET.DEMO_SIZE = [64, 128]
    cfg.DATASET.DEMO_NUM_TRAIN = 6
    cfg.DATASET.DEMO_NUM_VAL = 3
    cfg.INPUT.CROP_SIZE = [48, 48]
    return cfg


def test_a_demo_config_generates_its_set_on_first_use(demo_cfg):
    assert not os.path.exists(demo_cfg.DATASET.ROOT)
    val = build_dataset(demo_cfg, "val")  # the first build generates the set
    train = build_dataset(demo_cfg, "train")
    assert len(train) == 6 and len(val) == 3
    # The demo shows the big street classes: road, sidewalk, building, sky, car.
    present = set(np.unique(np.concatenate([val[i]["label"].numpy().ravel() for i in range(3)])).tolist())
    assert {0, 1, 2, 10, 13} <= present
    assert train[0]["image"].shape == (3, 48, 48)
    mtime = os.stat(demo_cfg.DATASET.ROOT).st_mtime_ns
    build_dataset(demo_cfg, "val")  # present: left alone
    assert os.stat(demo_cfg.DATASET.ROOT).st_mtime_ns == mtime


def test_a_dataset_that_is_no_demo_is_never_generated(tmp_path):
    cfg = get_cfg()
    cfg.DATASET.ROOT = str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="Cityscapes root not found"):
        build_dataset(cfg, "val")
    assert not os.path.exists(cfg.DATASET.ROOT)


def _build_in_a_process(cfg, queue) -> None:
    queue.put(len(build_dataset(cfg, "val", train=False)))


def test_processes_building_the_demo_together_generate_it_once(tmp_path):
    import multiprocessing as mp

    cfg = get_cfg()
    cfg.DATASET.ROOT, cfg.DATASET.GENERATE_DEMO = str(tmp_path / "demo"), True
    cfg.DATASET.DEMO_SIZE, cfg.DATASET.DEMO_NUM_TRAIN, cfg.DATASET.DEMO_NUM_VAL = [32, 64], 1, 2
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_a_process, args=(cfg, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [queue.get(timeout=5) for _ in procs] == [2, 2]
    # One generator wrote the set (no leftover temporary folder of a second one); the lock file stays.
    assert sorted(os.listdir(tmp_path)) == ["demo", "demo.lock"]


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


def test_bad_size_is_named(tmp_path):
    with pytest.raises(ValueError, match="DEMO_SIZE"):
        generate_demo_dataset(str(tmp_path / "x"), (16, 64), 1, 1)


def test_generating_the_demo_set_is_logged_once(tmp_path, segkit_log):
    cfg = get_cfg()
    cfg.DATASET.ROOT = str(tmp_path / "demo")
    cfg.DATASET.GENERATE_DEMO = True
    cfg.DATASET.DEMO_SIZE = [32, 64]
    cfg.DATASET.DEMO_NUM_TRAIN = 1
    cfg.DATASET.DEMO_NUM_VAL = 1
    ensure_demo_dataset(cfg)
    ensure_demo_dataset(cfg)  # present: nothing generated, nothing said
    lines = [r.getMessage() for r in segkit_log.records if "generating" in r.getMessage()]
    assert lines == [f"generating the demo segmentation dataset at {cfg.DATASET.ROOT}"]
    assert os.path.isdir(cfg.DATASET.ROOT)
