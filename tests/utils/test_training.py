import os

import pytest
import torch
from torch import nn

from segkit.utils.checkpoint import CheckpointError, find_last_checkpoint, save_checkpoint, save_state
from segkit.utils.comm import per_process_batch, unwrap_model
from segkit.utils.training import (TRAINING_KEYS, convert_sync_batchnorm, periodic_checkpoint_name, resume_training,
                                   start_run, training_state)


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
    state = training_state("segmentor", "bisenetv1", "SEED: 1\n", model, opt, sched, scaler, 7, extra=1)
    assert set(state) == set(TRAINING_KEYS) | {"extra"} and state["iteration"] == 7
    run = start_run(None, seed=0)
    assert resume_training(run, str(tmp_path), "segmentor", "bisenetv1", *_parts(1)) is None  # nothing yet
    path = str(tmp_path / periodic_checkpoint_name(7))
    save_checkpoint(path, state)
    assert os.path.basename(path) == "model_0000007.pth"

    model2, opt2, sched2, scaler2 = _parts(1)
    found, ckpt = resume_training(run, str(tmp_path), "segmentor", "bisenetv1", model2, opt2, sched2, scaler2)
    assert found == path and ckpt["extra"] == 1 and sched2.last_epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    with pytest.raises(ValueError, match="checkpoint of segmentor 'bisenetv1', this run trains classifier 'resnet18'"):
        resume_training(run, str(tmp_path), "classifier", "resnet18", *_parts(2))
    save_checkpoint(str(tmp_path / "bare.pth"), {"model": model.state_dict()})
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        resume_training(run, str(tmp_path), "segmentor", "bisenetv1", *_parts(3))


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
