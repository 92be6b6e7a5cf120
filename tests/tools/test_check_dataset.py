import json
import os
import shutil
import sys

import cv2
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import check_dataset  # noqa: E402


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    for split in ("train", "trainannot"):
        (root / split).mkdir(parents=True)
    # 3 images of 4x5 with known counts: class 0 -> 10 px each, class 1 -> 8, value 11 (void) -> 2.
    for i in range(3):
        lab = np.zeros((4, 5), np.uint8)
        lab[2:, :4] = 1
        lab[2:, 4] = 11
        cv2.imwrite(str(root / "train" / f"f{i}.png"), np.full((4, 5, 3), 40 * i, np.uint8))
        cv2.imwrite(str(root / "trainannot" / f"f{i}.png"), lab)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"MODEL:\n  NUM_CLASSES: 11\nDATASET:\n  NAME: camvid\n  ROOT: {root}\nDATALOADER:\n  NUM_WORKERS: 1\n")
    return root, cfg


def test_report_of_a_consistent_set(dataset, tmp_path, capsys):
    root, cfg = dataset
    out = tmp_path / "r.json"
    assert check_dataset.main(["--config-file", str(cfg), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["num_images"] == 3 and r["ignored_pixels"] == 6 and r["unknown_values"] == {}
    assert r["class_pixels"]["Sky"] == 30 and r["class_pixels"]["Building"] == 24 and r["class_pixels"]["Car"] == 0
    np.testing.assert_allclose(r["mean"], [40 / 255] * 3, atol=1e-6)
    assert "OK" in capsys.readouterr().out


def test_inconsistencies_exit_non_zero(dataset, tmp_path):
    root, cfg = dataset
    cv2.imwrite(str(root / "trainannot" / "f0.png"), np.full((4, 5), 13, np.uint8))
    cv2.imwrite(str(root / "train" / "extra.png"), np.zeros((4, 5, 3), np.uint8))
    out = tmp_path / "r.json"
    assert check_dataset.main(["--config-file", str(cfg), "--json", str(out)]) == 1
    r = json.loads(out.read_text())
    assert r["unknown_values"] == {"13": 20}
    assert [os.path.basename(p) for p in r["images_without_labels"]] == ["extra.png"]
    assert os.path.basename(next(iter(r["files_with_unknown_values"]))) == "f0.png"


def test_class_count_mismatch_with_model(dataset, capsys):
    _, cfg = dataset
    assert check_dataset.main(["--config-file", str(cfg), "--no-image-stats", "MODEL.NUM_CLASSES", "19"]) == 1
    assert "MODEL.NUM_CLASSES is 19 but dataset 'camvid'" in capsys.readouterr().out


def test_demo_config_generates_its_set_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "demo"
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(f"DATASET:\n  ROOT: {root}\n  GENERATE_DEMO: True\n  DEMO_SIZE: [32, 64]\n  DEMO_NUM_TRAIN: 2\n"
                   "  DEMO_NUM_VAL: 1\nDATALOADER:\n  NUM_WORKERS: 1\n")
    assert check_dataset.main(["--config-file", str(cfg), "--split", "val", "--no-image-stats"]) == 0
    assert (root / "leftImg8bit" / "val").is_dir() and "1 images" in capsys.readouterr().out


def test_user_errors_take_the_one_error_path(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"DATASET:\n  ROOT: {tmp_path / 'nowhere'}\n")
    assert check_dataset.main(["--config-file", str(cfg)]) == 1
    assert capsys.readouterr().err.startswith("error: Cityscapes root not found")


def test_truncated_file_is_reported(dataset, tmp_path, capsys):
    root, cfg = dataset
    img = root / "train" / "f1.png"
    img.write_bytes(img.read_bytes()[:-16])
    out = tmp_path / "r.json"
    assert check_dataset.main(["--config-file", str(cfg), "--json", str(out)]) == 1
    problems = json.loads(out.read_text())["file_problems"]
    assert len(problems) == 1 and "f1.png is truncated" in problems[0]
    assert "f1.png is truncated" in capsys.readouterr().out


def test_cityscapes_values_of_no_id_are_reported(tmp_path, monkeypatch, capsys):
    from tests.data.test_cityscapes import make_cityscapes

    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    ids = np.full((4, 10), 7, dtype=np.uint8)
    ids[0, 0] = 40
    make_cityscapes(tmp_path / "cs", label_ids=ids)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"DATASET:\n  ROOT: {tmp_path / 'cs'}\n")
    out = tmp_path / "r.json"
    assert check_dataset.main(["--config-file", str(cfg), "--split", "train", "--json", str(out)]) == 1
    r = json.loads(out.read_text())
    assert r["unknown_values"] == {"40": 1}
    assert "OK" not in capsys.readouterr().out.splitlines()[-1]


def test_list_names_every_registered_dataset(capsys):
    from segkit.data import DATASETS

    assert check_dataset.main(["--list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(lines) == set(DATASETS)
    assert "171" in lines["cocostuff164k"] and "150" in lines["ade20k"] and "65" in lines["mapillary_v12"]
    assert "Dark Zurich" in lines["dark_zurich"] and "DATASET.CLASS_NAMES" in lines["folder"]


def test_config_file_is_required_without_list(capsys):
    with pytest.raises(SystemExit):
        check_dataset.main([])
    assert "--config-file is required (or --list)" in capsys.readouterr().err
def _demo_cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "demo"
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(f"DATASET:\n  ROOT: {root}\n  GENERATE_DEMO: True\n  DEMO_SIZE: [32, 64]\n  DEMO_NUM_TRAIN: 2\n"
                   "  DEMO_NUM_VAL: 2\nDATALOADER:\n  NUM_WORKERS: 1\n")
    check_dataset.main(["--config-file", str(cfg), "--split", "val", "--no-image-stats"])
    return root, cfg


def test_cityscapes_split_without_its_label_folder_is_not_ok(tmp_path, monkeypatch, capsys):
    root, cfg = _demo_cfg(tmp_path, monkeypatch)
    shutil.rmtree(root / "gtFine" / "val")
    capsys.readouterr()
    out = tmp_path / "r.json"
    assert check_dataset.main(["--config-file", str(cfg), "--split", "val", "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "2 images, 0 with labels" in printed and "no image of split 'val' has a label" in printed
    assert "INCONSISTENT" in printed and "OK" not in printed
    assert len(json.loads(out.read_text())["images_without_labels"]) == 2


def test_unlabelled_test_split_is_said_plainly(tmp_path, monkeypatch, capsys):
    root, cfg = _demo_cfg(tmp_path, monkeypatch)
    shutil.copytree(root / "leftImg8bit" / "val", root / "leftImg8bit" / "test")
    capsys.readouterr()
    assert check_dataset.main(["--config-file", str(cfg), "--split", "test", "--no-image-stats"]) == 0
    printed = capsys.readouterr().out
    assert "no labels expected (the test split" in printed
    assert "OK: every image readable (no labels to check)" in printed


def test_camvid_split_with_an_empty_label_folder_is_not_ok(dataset, capsys):
    root, cfg = dataset
    for f in (root / "trainannot").iterdir():
        f.unlink()
    assert check_dataset.main(["--config-file", str(cfg), "--no-image-stats"]) == 1
    assert "3 images, 0 with labels" in capsys.readouterr().out


def test_unwritable_json_fails_before_the_scan(dataset, tmp_path, capsys):
    _, cfg = dataset
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert check_dataset.main(["--config-file", str(cfg), "--json", str(blocker / "r.json")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: cannot write --json {blocker}/r.json") and "images" not in captured.out
