"""Under `torchrun --nproc_per_node 2 --max-restarts 1` on CPU: one worker is killed mid-run, torchrun
restarts the group, which resumes from the newest readable checkpoint by itself, and the final weights
equal those of an uninterrupted run."""
from __future__ import annotations

import os
import subprocess
import sys

import torch

from tests.pretrain.test_trainer import data_root  # noqa: F401  (fixture)

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "elastic_worker.py")


def _torchrun(data: str, out, **env: str) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--max-restarts", "1", "--monitor-interval", "0.5", WORKER, data, str(out)]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    log = f"{out}.log"
    with open(log, "w") as f:  # a file, not a pipe: the output of a run that times out stays readable
        # A session of its own: torchrun signals its whole process group when it tears a worker group down,
        # which would otherwise reach the test runner and its other workers.
        code = subprocess.run(cmd, env=environ, stdout=f, stderr=subprocess.STDOUT, timeout=300,
                              start_new_session=True).returncode
    return code, open(log).read()


def test_a_killed_worker_restarts_resumes_and_ends_with_the_uninterrupted_weights(data_root, tmp_path):  # noqa: F811
    code, log = _torchrun(data_root, tmp_path / "straight")
    assert code == 0, log[-3000:]
    # 120 images / batch 16: 7 iterations per epoch, a checkpoint after each epoch; killed in the second.
    code, log = _torchrun(data_root, tmp_path / "restarted", KILL_AT_ITERATION="9")
    assert code == 0, log[-3000:]
    assert "torchrun restart 1: resuming" in log and "resumed from" in log and "at iteration 7" in log
    a = torch.load(tmp_path / "straight" / "model_final.pth", weights_only=True)["model"]
    b = torch.load(tmp_path / "restarted" / "model_final.pth", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
