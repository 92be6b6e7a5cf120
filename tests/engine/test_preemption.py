"""Stopping on a signal: the current iteration is saved atomically, the process exits with EXIT_PREEMPTED,
and `--resume` continues exactly (the final weights equal an uninterrupted run's)."""
from __future__ import annotations

import os
import signal

import pytest
import torch

from segkit.config import load_cfg
from segkit.engine import EXIT_PREEMPTED, Preempted
from segkit.engine.preemption import StopRequest, resume_flags
from segkit.engine.seg_trainer import SegTrainer
from segkit.utils.checkpoint import find_last_checkpoint, load_checkpoint
from tests.engine.test_seg_trainer import demo_root, tiny_opts  # noqa: F401  (fixture)


def _weights(trainer: SegTrainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_sigterm_saves_the_current_iteration_exits_75_and_resume_continues_exactly(demo_root, tmp_path, caplog):  # noqa: F811
    opts = {"SOLVER.MAX_ITER": 5, "SOLVER.CHECKPOINT_PERIOD": 0, "LOG_PERIOD": 10}
    straight = SegTrainer(load_cfg(None, tiny_opts(demo_root, tmp_path / "a", **opts)))
    straight.train()

    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path / "b", **opts))
    stopped = SegTrainer(cfg)
    step, save = stopped.run_step, stopped.save

    def signalled(batch, it):
        if it == 2:  # the signal arrives during the third iteration, which is still completed and saved
            os.kill(os.getpid(), signal.SIGTERM)
        return step(batch, it)

    def save_under_fire(name, iteration, marker=True):
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal while the checkpoint is written changes nothing
        return save(name, iteration, marker)

    stopped.run_step, stopped.save = signalled, save_under_fire
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as stop:
        stopped.train()
    assert stop.value.code == EXIT_PREEMPTED == 75
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is the trainer's only while it trains
    assert "stopped by SIGTERM after iteration 3 of 5" in str(stop.value) and "--resume" in str(stop.value)
    last = find_last_checkpoint(cfg.OUTPUT_DIR)
    assert last == os.path.join(cfg.OUTPUT_DIR, "model_0000003.pth")
    assert load_checkpoint(last)["iteration"] == 3
    assert not [f for f in os.listdir(cfg.OUTPUT_DIR) if ".tmp." in f]

    resumed = SegTrainer(cfg, resume=True)
    assert resumed.start_iter == 3
    resumed.train()
    final, expected = _weights(resumed), _weights(straight)
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_a_stop_request_is_a_flag_and_the_handlers_are_restored():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: no KeyboardInterrupt, a request
        assert stop.requested and stop.signal_name == "SIGINT"
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_torchrun_restart_resumes_and_never_overwrites(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    assert resume_flags(False, True) == (False, True)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert resume_flags(False, True) == (True, False)
    assert resume_flags(False, False) == (True, False)
