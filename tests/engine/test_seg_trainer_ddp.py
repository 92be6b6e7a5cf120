"""Two processes (gloo, CPU): the trainer's metrics.json describes exactly the model_final.pth it wrote.

Without SyncBN each process updates its own BatchNorm statistics; the trainer must evaluate (and save)
rank 0's, or the distributed evaluation scores a mixture of models that no file holds.
"""
from __future__ import annotations

import json
import os
import socket

import torch.multiprocessing as mp

from segkit.config import load_cfg
from tests.engine.test_seg_trainer import demo_root, tiny_opts  # noqa: F401  (fixture)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(rank: int, world: int, port: int, opts: list[str]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch

    torch.set_num_threads(1)
    from segkit.engine.seg_trainer import SegTrainer
    from segkit.utils.comm import cleanup

    try:
        SegTrainer(load_cfg(None, opts)).train()
    finally:
        cleanup()


def test_two_process_metrics_equal_evaluating_the_saved_weights(demo_root, tmp_path):  # noqa: F811
    from tools.evaluate import main as evaluate_main

    opts = tiny_opts(demo_root, tmp_path / "run", **{"SOLVER.IMS_PER_BATCH": 4, "SOLVER.CHECKPOINT_PERIOD": 0})
    mp.start_processes(_train, args=(2, _free_port(), opts), nprocs=2, start_method="spawn")
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())
    out = tmp_path / "eval.json"
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    assert evaluate_main(["--weights", str(tmp_path / "run" / "model_final.pth"), "--out", str(out), "--runtime", "torch",
                          "--config-file", str(empty), *opts]) == 0
    evaluated = json.loads(out.read_text())
    assert trained["num_images"] == evaluated["num_images"] == 2
    assert trained["confusion_matrix"] == evaluated["confusion_matrix"]
    assert trained["mIoU"] == evaluated["mIoU"]
