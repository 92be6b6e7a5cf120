"""The trainer base's hooks, through the pretraining trainer (its smallest subclass): frozen modules (a
teacher) stay out of the optimizer and the checkpoints, and a resume with other teacher weights is refused."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segkit.models.classifier import create_classifier
from segkit.pretrain import ClsTrainer
from segkit.utils.checkpoint import CheckpointError, find_last_checkpoint, load_checkpoint
from tests.engine.test_seg_trainer import demo_root  # noqa: F401  (a fixture)
from tests.pretrain.test_trainer import CLASSES, data_root, tiny_backbone, tiny_cfg  # noqa: F401  (fixtures)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _teacher_file(path, seed: int) -> str:
    torch.manual_seed(seed)
    teacher = create_classifier("tiny_test", num_classes=len(CLASSES))
    torch.save({"kind": "classifier", "model": teacher.state_dict()}, path)
    return str(path)


def _distilling(data, out, teacher: str):
    cfg = tiny_cfg(data, out, epochs=2)
    cfg.KD.TEACHER_WEIGHTS, cfg.KD.ALPHA = teacher, 0.5
    return cfg


def test_a_frozen_teacher_is_neither_trained_nor_saved_and_must_match_on_resume(data_root, tmp_path):  # noqa: F811
    first = _teacher_file(tmp_path / "teacher_a.pth", 0)
    trainer = ClsTrainer(_distilling(data_root, tmp_path / "run", first))
    teacher = trainer.frozen["teacher"]
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in teacher.parameters()}
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    step = trainer.run_step

    def stop_in_second_epoch(batch, it):
        if it == trainer.iters_per_epoch + 1:
            raise KeyboardInterrupt
        return step(batch, it)

    trainer.run_step = stop_in_second_epoch
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())  # frozen: never updated
    ckpt = load_checkpoint(find_last_checkpoint(str(tmp_path / "run")))
    assert not any(k.startswith("teacher") for k in ckpt["model"]) and set(ckpt["frozen"]) == {"teacher"}

    other = _teacher_file(tmp_path / "teacher_b.pth", 1)
    with pytest.raises(CheckpointError, match="other 'teacher' weights"):
        ClsTrainer(_distilling(data_root, tmp_path / "run", other), resume=True)
    resumed = ClsTrainer(_distilling(data_root, tmp_path / "run", first), resume=True)
    assert resumed.start_iter == trainer.iters_per_epoch
    assert resumed.train()["epoch"] == 2


def test_resume_refuses_a_checkpoint_of_another_model_or_no_training_state(data_root, tmp_path):  # noqa: F811
    from segkit.utils.checkpoint import save_checkpoint

    out = tmp_path / "run"
    save_checkpoint(str(out / "model_0000007.pth"), {"model": {}, "optimizer": {}, "scheduler": {}, "scaler": {},
                                                     "iteration": 7, "config": "", "kind": "segmentor",
                                                     "model_name": "bisenetv1"})
    with pytest.raises(CheckpointError, match="checkpoint of segmentor 'bisenetv1', this run trains classifier "
                                              "'tiny_test'"):
        ClsTrainer(tiny_cfg(data_root, out), resume=True)
    save_checkpoint(str(out / "model_0000008.pth"), {"model": {}})
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        ClsTrainer(tiny_cfg(data_root, out), resume=True)


def test_resume_refuses_a_run_whose_checkpoints_all_fail_to_load(data_root, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    out.mkdir()
    (out / "model_final.pth").write_bytes(b"cut short")
    (out / "events.jsonl").write_text('{"iteration": 5, "loss": 1.0}\n')
    with pytest.raises(CheckpointError, match=r"--resume: no checkpoint in .*run loads \(model_final.pth; the "
                                              r"reasons are logged above\): restore one, or start afresh"):
        ClsTrainer(tiny_cfg(data_root, out), resume=True)
    assert (out / "events.jsonl").read_text() == '{"iteration": 5, "loss": 1.0}\n'  # the run is left as it was
    ClsTrainer(tiny_cfg(data_root, tmp_path / "fresh"), resume=True)  # no checkpoint at all: a fresh start


# Both trainers with one loader worker each, kept referenced until the interpreter exits (as a reference cycle
# keeps a trainer: matplotlib's text parsing leaves exception/frame cycles holding train()'s frame). Workers
# ignore SIGTERM (segkit.data.worker_init_fn), so a loader still held then hangs the exit in multiprocessing's
# exit handler; train() must have shut them down. Its own process: loader workers inside a pytest-xdist worker
# have crashed it.
WORKERS_AT_EXIT_SCRIPT = r"""
import multiprocessing, os, sys
from segkit.config import load_cfg
from segkit.engine.seg_trainer import SegTrainer
from segkit.pretrain import ClsTrainer
from tests.engine.test_seg_trainer import tiny_opts
from tests.pretrain.test_trainer import tiny_cfg

seg_root, cls_root, tmp = sys.argv[1:]
one_worker = {"DATALOADER.NUM_WORKERS": 1, "SOLVER.MAX_ITER": 2, "SOLVER.CHECKPOINT_PERIOD": 0, "LOG_PERIOD": 10}
cls_cfg = tiny_cfg(cls_root, os.path.join(tmp, "cls_run"), epochs=1)
cls_cfg.MODEL.NAME, cls_cfg.DATALOADER.NUM_WORKERS = "resnet18", 1  # tiny_test is registered only inside pytest
KEPT = [SegTrainer(load_cfg(None, tiny_opts(seg_root, os.path.join(tmp, "seg_run"), **one_worker))),
        ClsTrainer(cls_cfg)]
for trainer in KEPT:
    started = []
    next_batch = trainer.next_batch
    trainer.next_batch = lambda it: (started.append(len(multiprocessing.active_children())), next_batch(it))[1]
    trainer.train()
    print(type(trainer).__name__, "workers while training", max(started), "after", len(multiprocessing.active_children()))
"""


def test_training_leaves_no_loader_worker_to_hang_the_exit(demo_root, data_root, tmp_path):  # noqa: F811
    proc = subprocess.run([sys.executable, "-c", WORKERS_AT_EXIT_SCRIPT, demo_root, data_root, str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if "workers while training" in line]
    assert lines == ["SegTrainer workers while training 1 after 0", "ClsTrainer workers while training 1 after 0"]
