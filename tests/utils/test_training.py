import os

import pytest
import torch
from torch import nn

from segkit.utils.checkpoint import CheckpointError, find_last_checkpoint, save_checkpoint, save_state
from segkit.utils.comm import per_process_batch, unwrap_model
from segkit.utils.training import (TRAINING_KEYS, convert_sync_batchnorm, periodic_checkpoint_name, resume_training,
                                   start_run, training_state)


def _cfg(**solver):
    from segkit.config import load_cfg

    return load_cfg(None, [str(x) for kv in solver.items() for x in (f"SOLVER.{kv[0]}", kv[1])])


def _parts(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    return model, opt, sched, torch.amp.GradScaler("cpu", enabled=False)


def test_state_round_trip_and_kind_check(tmp_path):
    model, opt, sched, scaler = _parts(0)
    model(torch.randn(4, 2)).sum().backward()
    opt.step(), sched.step()
    state = training_state("segmentor", "bisenetv1", _cfg().dump(), model, opt, sched, scaler, 7, extra=1)
    assert set(state) == set(TRAINING_KEYS) | {"extra"} and state["iteration"] == 7
    run = start_run(None, seed=0)
    assert resume_training(run, str(tmp_path), "segmentor", "bisenetv1", *_parts(1), _cfg()) is None  # nothing yet
    path = str(tmp_path / periodic_checkpoint_name(7))
    save_checkpoint(path, state)
    assert os.path.basename(path) == "model_0000007.pth"

    model2, opt2, sched2, scaler2 = _parts(1)
    found, ckpt = resume_training(run, str(tmp_path), "segmentor", "bisenetv1", model2, opt2, sched2, scaler2,
                                  _cfg())
    assert found == path and ckpt["extra"] == 1 and sched2.last_epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    with pytest.raises(ValueError, match="checkpoint of segmentor 'bisenetv1', this run trains classifier 'resnet18'"):
        resume_training(run, str(tmp_path), "classifier", "resnet18", *_parts(2), _cfg())
    save_checkpoint(str(tmp_path / "bare.pth"), {"model": model.state_dict()})
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        resume_training(run, str(tmp_path), "segmentor", "bisenetv1", *_parts(3), _cfg())


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


def test_resume_names_config_changes_and_which_value_wins(tmp_path, capsys):
    model, opt, sched, scaler = _parts(0)
    save_checkpoint(str(tmp_path / "model_0000005.pth"),
                    training_state("segmentor", "bisenetv1", _cfg().dump(), model, opt, sched, scaler, 5))
    run = start_run(None, seed=0)
    resume_training(run, str(tmp_path), "segmentor", "bisenetv1", *_parts(1), _cfg(BASE_LR=0.02, MAX_ITER=100))
    text = capsys.readouterr().out  # the segkit logger writes to stdout
    assert "SOLVER.BASE_LR: 0.01 -> 0.02 (the checkpoint's value is kept)" in text
    assert "SOLVER.MAX_ITER: 80000 -> 100 (the new value is used)" in text


def test_a_new_run_over_an_old_one_is_refused_and_changes_nothing(tmp_path):
    import hashlib

    from segkit.utils.training import claim_output_dir, existing_run

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
