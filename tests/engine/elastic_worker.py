"""A torchrun worker for tests/engine/test_elastic.py: a tiny pretraining run; with KILL_AT_ITERATION set,
rank 1 of the first worker group SIGKILLs itself at that iteration (a lost machine), the rest is torchrun's."""
from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from segkit.models.backbones import BACKBONES  # noqa: E402
from segkit.pretrain import ClsTrainer  # noqa: E402
from segkit.utils.cli import run_tool  # noqa: E402
from tests.pretrain.test_trainer import TinyBackbone, tiny_cfg  # noqa: E402


def main(data_root: str, out: str) -> int:
    torch.set_num_threads(1)
    BACKBONES["tiny_test"] = TinyBackbone
    trainer = ClsTrainer(tiny_cfg(data_root, out, epochs=2))
    kill_at = int(os.environ.get("KILL_AT_ITERATION", "-1"))
    if os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0" and trainer.rank == 1:
        step = trainer.run_step

        def killed(batch, it):
            if it == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return step(batch, it)

        trainer.run_step = killed
    return run_tool(trainer.train)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
