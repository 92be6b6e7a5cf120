import json
import os

import torch

from segkit.config import load_cfg
from segkit.utils.checkpoint import load_checkpoint
from tools.train_seg import main

DEMO_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo", "bisenetv1_demo.yaml")


def tiny_demo_argv(tmp_path, *extra: str) -> list[str]:
    """The demo config on a tiny demo set that the run generates itself (GENERATE_DEMO is on)."""
    opts = {
        "DATASET.ROOT": tmp_path / "demo_cityscapes", "OUTPUT_DIR": tmp_path / "out",
        "DATASET.DEMO_SIZE": "[64, 128]", "DATASET.DEMO_NUM_TRAIN": 4, "DATASET.DEMO_NUM_VAL": 2,
        "INPUT.CROP_SIZE": "[64, 128]", "INPUT.SCALE_RANGE": "[0.75, 1.25]", "TEST.SCALE": 1.0,
        "SOLVER.IMS_PER_BATCH": 2, "SOLVER.MAX_ITER": 3, "SOLVER.WARMUP_ITERS": 1,
        "SOLVER.CHECKPOINT_PERIOD": 2, "TEST.EVAL_PERIOD": 2, "DATALOADER.NUM_WORKERS": 0, "LOG_PERIOD": 1,
    }
    return ["--config-file", DEMO_CONFIG, *[str(x) for kv in opts.items() for x in kv], *extra]


def test_train_seg_end_to_end_on_a_generated_cityscapes_set(tmp_path, capsys):
    assert main(tiny_demo_argv(tmp_path)) == 0
    out = tmp_path / "out"
    assert (tmp_path / "demo_cityscapes" / "leftImg8bit" / "val").is_dir()
    for name in ("log.txt", "config.yaml", "model_0000002.pth", "model_final.pth", "metrics.json"):
        assert (out / name).is_file(), name

    log = (out / "log.txt").read_text()
    for needle in ("iter: 3/3", "loss_main", "loss_aux16", "lr:", "s/it", "data:", "eta:", "mIoU"):
        assert needle in log, needle
    assert "evaluation on val at iteration 2" in log  # TEST.EVAL_PERIOD 2, then the final one
    assert "mIoU" in capsys.readouterr().out  # the table reaches the console too

    cfg = load_cfg(str(out / "config.yaml"))
    assert cfg.SOLVER.MAX_ITER == 3 and cfg.OUTPUT_DIR == str(out)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iteration"] == 3
    assert 0.0 <= metrics["mIoU"] <= 100.0
    assert set(metrics["per_class"]["road"]) == {"IoU", "Acc"}

    final = load_checkpoint(str(out / "model_final.pth"))
    assert final["iteration"] == 3
    assert all(torch.isfinite(v).all() for v in final["model"].values() if v.is_floating_point())

    # --resume (after the overrides, too) on a finished run: nothing is retrained or rewritten. A changed
    # optimizer key keeps the checkpoint's value, and config.yaml says so: it describes what runs.
    before = os.path.getmtime(out / "model_final.pth")
    assert main(tiny_demo_argv(tmp_path, "--resume", "SOLVER.BASE_LR", "0.5")) == 0
    assert os.path.getmtime(out / "model_final.pth") == before
    log = (out / "log.txt").read_text()
    assert "already at iteration 3 of 3" in log
    assert "SOLVER.BASE_LR: 0.02 -> 0.5 (the checkpoint's value is kept)" in log
    assert load_cfg(str(out / "config.yaml")).SOLVER.BASE_LR == 0.02


def test_a_start_that_fails_before_its_first_iteration_does_not_block_the_retry(tmp_path, capsys):
    assert main(tiny_demo_argv(tmp_path, "MODEL.NUM_CLASSES", "7")) == 1
    err = capsys.readouterr().err
    assert "MODEL.NUM_CLASSES is 7" in err and "19 classes" in err
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["log.txt"]  # the error, and nothing that claims a run
    # The corrected command starts without --overwrite, and the log keeps the failed start's error.
    assert main(tiny_demo_argv(tmp_path, "SOLVER.MAX_ITER", "1", "SOLVER.CHECKPOINT_PERIOD", "0")) == 0
    assert (out / "model_final.pth").is_file()
    log = (out / "log.txt").read_text()
    assert log.index("error: MODEL.NUM_CLASSES is 7") < log.index("training from iteration 0 to 1")


def test_unwritable_output_dir_fails_before_the_data_is_built(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where OUTPUT_DIR should be")
    assert main(tiny_demo_argv(tmp_path, "OUTPUT_DIR", str(blocker / "run"))) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write OUTPUT_DIR {blocker}/run: ")
    assert not (tmp_path / "demo_cityscapes").exists()  # nothing was generated or built before the check


def test_a_config_that_is_not_yaml_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  NAME: [bisenetv1\n")
    assert main(["--config-file", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: config {bad}: not valid YAML at line 3, column 1: ") and err.count("\n") == 1
