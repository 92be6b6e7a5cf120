"""tools/make_demo_cls_data.py builds the set a classification config describes, by default the pretraining
demo's own, so running it first leaves the demo the very data it would have generated itself."""
import filecmp
import os
import sys

import cv2

from segkit.config import get_cls_cfg, load_cfg
from segkit.pretrain.demo import ensure_demo_cls_dataset

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import make_demo_cls_data  # noqa: E402

SMALL = ["DATASET.DEMO_NUM_CLASSES", "3", "DATASET.DEMO_TRAIN_PER_CLASS", "2", "DATASET.DEMO_VAL_PER_CLASS", "1",
         "DATASET.DEMO_SIZE", "20"]


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_the_default_is_the_demo_config_and_writes_what_the_demo_would(tmp_path, monkeypatch):
    assert make_demo_cls_data.parse_args([]).config_file == make_demo_cls_data.DEMO_CONFIG
    demo = load_cfg(make_demo_cls_data.DEMO_CONFIG, defaults=get_cls_cfg)
    assert demo.DATASET.ROOT == "datasets/demo_cls" and demo.DATASET.GENERATE_DEMO
    # The demo config with smaller sizes (the full set takes a while): the tool's set and the one the
    # demo generates on first use are the same files, byte for byte.
    monkeypatch.chdir(tmp_path)
    assert make_demo_cls_data.main(["--root", "tool", *SMALL]) == 0
    cfg = load_cfg(make_demo_cls_data.DEMO_CONFIG, ["DATASET.ROOT", "demo", *SMALL], defaults=get_cls_cfg)
    ensure_demo_cls_dataset(cfg)
    files = _files(tmp_path / "demo")
    assert len(files) == 3 * 3 and files == _files(tmp_path / "tool")
    assert all(filecmp.cmp(tmp_path / "demo" / f, tmp_path / "tool" / f, shallow=False) for f in files)


def test_sizes_and_seed_come_from_the_config(tmp_path):
    assert make_demo_cls_data.main(["--root", str(tmp_path / "a"), *SMALL, "DATASET.DEMO_TRAIN_PER_CLASS", "4"]) == 0
    assert sorted(os.listdir(tmp_path / "a" / "train")) == ["circle", "square", "triangle"]
    assert len(os.listdir(tmp_path / "a" / "train" / "circle")) == 4
    assert len(os.listdir(tmp_path / "a" / "val" / "circle")) == 1
    assert cv2.imread(str(tmp_path / "a" / "train" / "circle" / "00000.jpg")).shape == (20, 20, 3)  # DEMO_SIZE
    assert make_demo_cls_data.main(["--root", str(tmp_path / "b"), *SMALL, "SEED", "7"]) == 0
    one = "train/circle/00000.jpg"
    assert not filecmp.cmp(tmp_path / "a" / one, tmp_path / "b" / one, shallow=False)
    assert sorted(os.listdir(tmp_path)) == ["a", "a.lock", "b", "b.lock"]  # no temporary folder left


def test_an_existing_root_needs_force_and_a_bad_value_is_one_line(tmp_path, capsys):
    root = tmp_path / "demo"
    assert make_demo_cls_data.main(["--root", str(root), *SMALL]) == 0
    assert make_demo_cls_data.main(["--root", str(root), *SMALL]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert make_demo_cls_data.main(["--root", str(root), "--force", *SMALL, "DATASET.DEMO_NUM_CLASSES", "2"]) == 0
    assert sorted(os.listdir(root / "train")) == ["circle", "square"]
    assert make_demo_cls_data.main(["--root", str(tmp_path / "x"), "DATASET.DEMO_NUM_CLASSES", "40"]) == 1
    assert capsys.readouterr().err.strip() == "error: demo classes must be in 2..10, got 40"

