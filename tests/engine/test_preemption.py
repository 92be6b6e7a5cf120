"""Stopping on a signal: the current iteration is saved atomically, the process exits with EXIT_PREEMPTED,
and `--resume` continues exactly (the final weights equal an uninterrupted run's)."""
from __future__ import annotations

import os
import subprocess
import sys

import torch

from segkit.config import load_cfg
from segkit.engine import EXIT_PREEMPTED
from segkit.engine.preemption import resume_flags
from segkit.engine.seg_trainer import SegTrainer
from segkit.utils.checkpoint import find_last_checkpoint, load_checkpoint
from tests.engine.preempt_worker import OPTS
from tests.engine.test_seg_trainer import demo_root, tiny_opts  # noqa: F401  (fixture)

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preempt_worker.py")


def _weights(trainer: SegTrainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_sigterm_saves_the_current_iteration_exits_75_and_resume_continues_exactly(demo_root, tmp_path):  # noqa: F811
    straight = SegTrainer(load_cfg(None, tiny_opts(demo_root, tmp_path / "a", **OPTS)))
    straight.train()

    out = tmp_path / "b"
    proc = subprocess.run([sys.executable, WORKER, demo_root, str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_PREEMPTED == 75, proc.stderr[-2000:]
    log = (out / "log.txt").read_text()
    assert "stopped by SIGTERM after iteration 3 of 5" in log and "--resume" in log
    assert "SIGTERM received again" in log and "Traceback" not in log
    last = find_last_checkpoint(str(out))
    assert last == os.path.join(str(out), "model_0000003.pth")
    assert load_checkpoint(last)["iteration"] == 3
    assert not [f for f in os.listdir(out) if ".tmp." in f]

    resumed = SegTrainer(load_cfg(None, tiny_opts(demo_root, out, **OPTS)), resume=True)
    assert resumed.start_iter == 3
    resumed.train()
    final, expected = _weights(resumed), _weights(straight)
    assert all(torch.equal(final[k], expected[k]) for k in expected)


STOP_REQUEST_SCRIPT = """
import os, signal
from segkit.engine.preemption import StopRequest
before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
with StopRequest() as stop:
    assert not stop.requested
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: no KeyboardInterrupt, a request
    assert stop.requested and stop.signal_name == "SIGINT"
assert {s: signal.getsignal(s) for s in before} == before
print("ok")
"""


def test_a_stop_request_is_a_flag_and_the_handlers_are_restored():
    # In a process of its own: a test runner's worker thread is no place to receive Ctrl-C.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", STOP_REQUEST_SCRIPT], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_a_torchrun_restart_resumes_and_never_overwrites(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    assert resume_flags(False, True) == (False, True)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert resume_flags(False, True) == (True, False)
    assert resume_flags(False, False) == (True, False)
