import os

import pytest
import torch
from torch import nn

from segkit.utils.checkpoint import find_last_checkpoint, save_checkpoint, save_state
from segkit.utils.comm import per_process_batch, unwrap_model
from segkit.engine.run import (claim_output_dir, convert_sync_batchnorm, existing_run, reconcile_resumed_config,
                               start_run)


def _cfg(**solver):
    from segkit.config import load_cfg

    return load_cfg(None, [str(x) for kv in solver.items() for x in (f"SOLVER.{kv[0]}", kv[1])])


def _parts(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    return model, opt, sched, torch.amp.GradScaler("cpu", enabled=False)


def test_newest_checkpoint_without_the_marker(tmp_path):
    out = str(tmp_path)
    for name in ("model_0000010.pth", "model_0000020.pth"):
        save_checkpoint(os.path.join(out, name), {"iteration": 1})
    save_state(os.path.join(out, "model_best.pth"), {"iteration": 1})
    os.remove(os.path.join(out, "last_checkpoint"))
    assert find_last_checkpoint(out).endswith("model_0000020.pth")  # model_best.pth is never a resume point
    save_state(os.path.join(out, "model_final.pth"), {"iteration": 1})
    assert find_last_checkpoint(out).endswith("model_final.pth")


def test_one_sync_bn_switch(tmp_path):
    run = start_run(None, seed=0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    assert convert_sync_batchnorm(model, True, "BN", run) is model  # one process: nothing to synchronise
    with pytest.raises(ValueError, match="MODEL.SYNC_BN True"):
        convert_sync_batchnorm(model, False, "SyncBN", run)


def test_per_process_batch_and_unwrap():
    assert per_process_batch(16) == 16
    with pytest.raises(ValueError, match="SOLVER.IMS_PER_BATCH 0"):
        per_process_batch(0)
    m = nn.Linear(2, 2)
    assert unwrap_model(nn.DataParallel(nn.DataParallel(m))) is m


def test_a_resumed_config_names_changes_and_holds_the_values_that_run():
    saved = _cfg().dump()
    cfg, lines = reconcile_resumed_config(saved, _cfg(BASE_LR=0.02, MAX_ITER=100))
    assert "SOLVER.BASE_LR: 0.01 -> 0.02 (the checkpoint's value is kept)" in lines
    assert "SOLVER.MAX_ITER: 80000 -> 100 (the new value is used)" in lines
    # What config.yaml and later checkpoints hold is what runs: the optimizer's LR, the new length.
    assert cfg.SOLVER.BASE_LR == 0.01 and cfg.SOLVER.MAX_ITER == 100


def test_a_new_run_over_an_old_one_is_refused_and_changes_nothing(tmp_path):
    import hashlib

    out = tmp_path / "run"
    out.mkdir()
    for name, data in (("config.yaml", b"SEED: 1\n"), ("metrics.json", b"{}"), ("model_final.pth", b"x"),
                       ("notes.txt", b"mine")):
        (out / name).write_bytes(data)
    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    with pytest.raises(ValueError, match=r"holds a run \(config.yaml, metrics.json, model_final.pth\): continue it "
                                         r"with --resume, replace it with --overwrite"):
        claim_output_dir(str(out), resume=False, overwrite=False)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()} == sums
    claim_output_dir(str(out), resume=True, overwrite=False)  # continuing is fine
    with pytest.raises(ValueError, match="give one"):
        claim_output_dir(str(out), resume=True, overwrite=True)
    claim_output_dir(str(out), resume=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and existing_run(str(out)) == []


def test_a_start_that_failed_before_its_first_iteration_is_no_run_to_protect(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.txt").write_text("error: MODEL.NUM_CLASSES is 3 but ...\n")
    (out / "config.yaml").write_text("SEED: 1\n")
    assert existing_run(str(out)) == []
    claim_output_dir(str(out), resume=False, overwrite=False)  # the retry starts without --overwrite
    assert (out / "log.txt").read_text().startswith("error:")  # and keeps the earlier log
    (out / "events.jsonl").write_text('{"iteration": 1, "loss": 1.0}\n')
    with pytest.raises(ValueError, match="holds a run"):
        claim_output_dir(str(out), resume=False, overwrite=False)
