"""The trainer base's hooks, through the pretraining trainer (its smallest subclass): frozen modules (a
teacher) stay out of the optimizer and the checkpoints, and a resume with other teacher weights is refused."""
from __future__ import annotations

import pytest
import torch

from segkit.models.classifier import create_classifier
from segkit.pretrain import ClsTrainer
from segkit.utils.checkpoint import CheckpointError, find_last_checkpoint, load_checkpoint
from tests.pretrain.test_trainer import CLASSES, data_root, tiny_backbone, tiny_cfg  # noqa: F401  (fixtures)


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
