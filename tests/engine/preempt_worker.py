"""A process for tests/engine/test_preemption.py: a tiny segmentation run that receives SIGTERM during its
third iteration and a second SIGTERM while it writes the checkpoint, as a scheduler's job would. Run as a
process of its own, so the signal reaches a real process rather than a test runner's worker."""
from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from segkit.config import load_cfg  # noqa: E402
from segkit.engine.seg_trainer import SegTrainer  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402
from tests.engine.test_seg_trainer import tiny_opts  # noqa: E402

OPTS = {"SOLVER.MAX_ITER": 5, "SOLVER.CHECKPOINT_PERIOD": 0, "LOG_PERIOD": 10}


def main(demo_root: str, out: str) -> int:
    torch.set_num_threads(1)
    trainer = SegTrainer(load_cfg(None, tiny_opts(demo_root, out, **OPTS)))
    step, save = trainer.run_step, trainer.save

    def signalled(batch, it):
        if it == 2:  # the signal arrives during the third iteration, which is still completed and saved
            os.kill(os.getpid(), signal.SIGTERM)
        return step(batch, it)

    def save_under_fire(name, iteration, marker=True):
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal while the checkpoint is written changes nothing
        return save(name, iteration, marker)

    trainer.run_step, trainer.save = signalled, save_under_fire
    before = signal.getsignal(signal.SIGTERM)
    code = run_tool(trainer.train)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the trainer's only while it trains
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
