"""Two processes (gloo, CPU) on the engine: a NaN loss on ONE process stops BOTH with the same message, in
both pipelines, instead of leaving the other waiting forever in its next all-reduce."""
from __future__ import annotations

import os
import socket
import time

import pytest
import torch.multiprocessing as mp

from tests.engine.test_seg_trainer import demo_root, tiny_opts  # noqa: F401  (fixture)
from tests.pretrain.test_trainer import data_root, tiny_cfg  # noqa: F401  (fixture)

TIMEOUT_S = 300  # a hang fails the test instead of blocking the suite


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _poisoned_run(rank: int, world: int, port: int, pipeline: str, setup: list, report_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch

    torch.set_num_threads(1)
    from segkit.engine import NonFiniteError
    from segkit.utils.comm import cleanup

    if pipeline == "seg":
        from segkit.config import load_cfg
        from segkit.engine.seg_trainer import SegTrainer

        trainer = SegTrainer(load_cfg(None, setup))
    else:
        from segkit.models.backbones import BACKBONES
        from segkit.pretrain import ClsTrainer
        from tests.pretrain.test_trainer import TinyBackbone

        BACKBONES["tiny_test"] = TinyBackbone
        trainer = ClsTrainer(tiny_cfg(*setup))
    losses = trainer.compute_losses

    def nan_on_rank_1_at_iteration_2(batch):
        out = losses(batch)
        if rank == 1 and getattr(trainer, "_calls", 0) == 1:
            out["loss"] = out["loss"] * float("nan")
        trainer._calls = getattr(trainer, "_calls", 0) + 1
        return out

    trainer.compute_losses = nan_on_rank_1_at_iteration_2
    try:
        trainer.train()
        message = "finished"
    except NonFiniteError as e:
        message = str(e)
    # The report first: what the process said is the test's subject; tearing gloo down comes after.
    with open(os.path.join(report_dir, f"rank{rank}.txt"), "w") as f:
        f.write(message)
    cleanup()


@pytest.mark.parametrize("pipeline", ["seg", "cls"])
def test_a_nan_on_one_process_stops_both_with_the_message(pipeline, demo_root, data_root, tmp_path):  # noqa: F811
    if pipeline == "seg":
        setup = tiny_opts(demo_root, tmp_path / "run", **{"SOLVER.IMS_PER_BATCH": 4, "SOLVER.MAX_ITER": 6})
    else:
        setup = [data_root, str(tmp_path / "run"), 2]
    ctx = mp.start_processes(_poisoned_run, args=(2, _free_port(), pipeline, setup, str(tmp_path)), nprocs=2,
                             start_method="spawn", join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            if ctx.join(timeout=5):
                break
        except mp.ProcessExitedException as e:
            # gloo may abort a process while the group is torn down after both stopped (a peer gone first, on
            # a loaded machine); both must still have stopped with the message, which the reports show.
            if not all((tmp_path / f"rank{r}.txt").is_file() for r in (0, 1)):
                raise
            print(f"teardown after the stop: {e}")
            break
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the processes hang after a NaN loss on one of them")
    reports = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    for text in reports:  # each names its own losses, and how many processes saw a non-finite one
        assert text.startswith("non-finite loss at iteration 2: loss="), text
        assert "(on 1 of 2 processes). Stopping; last good checkpoint: none" in text
    assert reports[1].startswith("non-finite loss at iteration 2: loss=nan")
