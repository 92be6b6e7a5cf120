"""Stopping on a signal: the current iteration is saved atomically, the process exits with EXIT_PREEMPTED,
and `--resume` continues exactly (the final weights equal an uninterrupted run's)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
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


@pytest.fixture
def one_thread():
    """The worker process computes with one thread; so must the runs it is compared with bit for bit (the suite
    sets one thread per xdist worker, a plain `pytest` run does not)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sigterm_saves_the_current_iteration_exits_75_and_resume_continues_exactly(demo_root, tmp_path,  # noqa: F811
                                                                                  one_thread):
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


def _recorded_evaluations(trainer: SegTrainer, cut_short: int | None = None) -> dict[int, float]:
    """mIoU per evaluated iteration; the evaluation of `cut_short` sees a stop signal after its first image."""
    seen: dict[int, float] = {}
    evaluate = trainer.evaluate

    def wrapped(iteration):
        asked = []

        def signal_after_the_first_image():
            asked.append(1)
            return iteration == cut_short and len(asked) > 1

        trainer.stop_requested = signal_after_the_first_image
        seen[iteration] = evaluate(iteration)["mIoU"]
        return seen[iteration]

    trainer.evaluate = wrapped
    return seen


def test_a_signal_during_an_evaluation_cuts_it_short_and_the_resumed_run_redoes_it_first(demo_root, tmp_path):  # noqa: F811
    opts = {"SOLVER.MAX_ITER": 4, "TEST.EVAL_PERIOD": 2, "SOLVER.CHECKPOINT_PERIOD": 0}
    straight = SegTrainer(load_cfg(None, tiny_opts(demo_root, tmp_path / "a", **opts)))
    expected = _recorded_evaluations(straight)
    straight.train()
    assert sorted(expected) == [2, 4]

    out = tmp_path / "b"
    recorded = []
    for stop_at in (2, 4):  # a periodic evaluation, then (resumed) the final one
        run = SegTrainer(load_cfg(None, tiny_opts(demo_root, out, **opts)), resume=stop_at == 4)
        recorded.append(_recorded_evaluations(run, cut_short=stop_at))
        with pytest.raises(SystemExit) as stopped:
            run.train()
        assert stopped.value.code == EXIT_PREEMPTED
        last = find_last_checkpoint(str(out))
        assert last.endswith(f"model_{stop_at:07d}.pth") and load_checkpoint(last)["pending_evaluation"] == stop_at
        assert not (out / "model_final.pth").exists()
    # Cut short, nothing recorded; the resumed run redid the first one before training on.
    assert recorded == [{}, {2: expected[2]}]

    resumed = SegTrainer(load_cfg(None, tiny_opts(demo_root, out, **opts)), resume=True)
    redone = _recorded_evaluations(resumed)
    resumed.train()
    assert redone == {4: expected[4]}
    assert load_checkpoint(str(out / "model_final.pth"))["pending_evaluation"] is None
    final, reference = _weights(resumed), _weights(straight)
    assert all(torch.equal(final[k], reference[k]) for k in reference)


def test_an_evaluation_due_when_the_processes_agreed_to_stop_is_left_pending(demo_root, tmp_path):  # noqa: F811
    # A signal that reached another process makes every process stop after this iteration (stop_agreed); the
    # evaluation due then does not start, which could outlast the launcher's patience, and is done on resume.
    opts = {"SOLVER.MAX_ITER": 4, "TEST.EVAL_PERIOD": 2, "SOLVER.CHECKPOINT_PERIOD": 0}
    run = SegTrainer(load_cfg(None, tiny_opts(demo_root, tmp_path, **opts)))
    step, evaluate = run.run_step, run.evaluate
    evaluated = []

    def signal_elsewhere(batch, it):
        losses = step(batch, it)
        run.stop_agreed = run.stop_agreed or it == 1  # as the step's all-reduce reports it
        return losses

    run.run_step = signal_elsewhere
    run.evaluate = lambda iteration: evaluated.append(iteration) or evaluate(iteration)
    with pytest.raises(SystemExit):
        run.train()
    assert evaluated == [2]  # asked, and cut short before its first image
    last = find_last_checkpoint(str(tmp_path))
    assert last.endswith("model_0000002.pth") and load_checkpoint(last)["pending_evaluation"] == 2
    assert not os.path.exists(os.path.join(str(tmp_path), "metrics.json"))
