import json
import os
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
