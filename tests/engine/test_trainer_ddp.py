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
    # The same message on both: the losses averaged over processes (NaN where one was), and how many saw it.
    assert reports[0] == reports[1]
    assert reports[0].startswith("non-finite loss at iteration 2: loss=nan"), reports[0]
    assert "(on 1 of 2 processes). Stopping; last good checkpoint: none" in reports[0]


def _pretrain_resume_run(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import json

    import torch

    torch.set_num_threads(1)
    from segkit.models.backbones import BACKBONES
    from segkit.pretrain import ClsTrainer
    from segkit.utils.comm import cleanup
    from tests.pretrain.test_trainer import TinyBackbone

    BACKBONES["tiny_test"] = TinyBackbone

    def trainer(name, resume=False):
        cfg = tiny_cfg(root, os.path.join(out, name), epochs=2)
        cfg.freeze()
        return ClsTrainer(cfg, resume=resume)

    straight = trainer("a")
    straight.train()
    crashed = trainer("b")
    step = crashed.run_step

    def crash_mid_second_epoch(batch, it):
        if it == crashed.iters_per_epoch + 2:  # a checkpoint after the epoch's first iteration is the resume point
            raise KeyboardInterrupt("simulated crash")
        losses = step(batch, it)
        if it == crashed.iters_per_epoch:
            crashed.save_periodic(it + 1)
        return losses

    crashed.run_step = crash_mid_second_epoch
    try:
        crashed.train()
    except KeyboardInterrupt:
        pass
    resumed = trainer("b", resume=True)
    resumed.train()
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"start": resumed.start_iter, "straight": [h["train_loss"] for h in straight.history],
                   "resumed": [h["train_loss"] for h in resumed.history]}, f)
    cleanup()


def test_pretraining_resumed_mid_epoch_on_two_processes_logs_the_same_epoch_loss(data_root, tmp_path):  # noqa: F811
    # Every rank's share of the interrupted epoch's loss is saved, not rank 0's alone.
    mp.start_processes(_pretrain_resume_run, args=(2, _free_port(), data_root, str(tmp_path)), nprocs=2,
                       start_method="spawn", join=True)
    import json

    for r in (0, 1):
        report = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert report["start"] > 0 and len(report["resumed"]) == 2
        assert report["resumed"] == pytest.approx(report["straight"], rel=1e-6), report
