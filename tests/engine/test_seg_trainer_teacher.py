"""SegTrainer with a teacher: distillation and semi-supervised runs on demo data (tiny FCNs), their resume, their
log, and the CamVid configs that use them (built and run one iteration on a generated CamVid-format folder)."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import torch

from segkit.config import load_cfg
from segkit.engine.seg_trainer import SegTrainer
from segkit.models import build_model
from segkit.utils.checkpoint import load_checkpoint
from tests.data.test_folder import write_pair

from .test_seg_trainer import demo_root, record_losses, tiny_opts  # noqa: F401  (demo_root: a fixture)

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "camvid")
pytestmark = pytest.mark.usefixtures("tiny_backbone_name")  # FCN's "tiny" backbone (tests/conftest.py)
FCN = ["MODEL.NAME", "fcn", "MODEL.HEAD_CHANNELS", "64", "MODEL.AUX_CHANNELS", "32", "MODEL.BACKBONE.NAME", "tiny"]


def _save_teacher(tcfg, path, seed: int = 1) -> str:
    """A segkit checkpoint of a randomly initialised model of `tcfg`, carrying its config."""
    torch.manual_seed(seed)
    torch.save({"model": build_model(tcfg).state_dict(), "config": tcfg.dump()}, path)
    return str(path)


@pytest.fixture
def teacher_file(tmp_path, tiny_backbone_name):
    """A tiny FCN teacher for the demo classes; TEACHER.CONFIG may stay empty: the checkpoint carries it."""
    return _save_teacher(load_cfg(None, FCN), tmp_path / "teacher.pth")


def _cfg(root, out, teacher: str = "", **extra):
    opts = tiny_opts(root, out, **{"INPUT.CROP_SIZE": "[64, 96]", **extra})
    return load_cfg(None, [*FCN, *opts, *(["TEACHER.WEIGHTS", teacher] if teacher else [])])


def _distilling(root, out, teacher):
    return _cfg(root, out, teacher, **{"TEACHER.LOSSES": "['cwd', 'kd', 'cwd_feature']",
                                       "TEACHER.STUDENT_FEATURE": "backbone:c4", "TEACHER.TEACHER_FEATURE": "backbone:c5"})


def _semi(root, out, teacher: str = "", **extra):
    return _cfg(root, out, teacher, **{"SEMI.ENABLED": True, "DATASET.TRAIN_SUBSET": 0.5,
                                       "DATASET.UNLABELED": "train_rest", "SEMI.THRESHOLD": 0.05,
                                       "SEMI.ACCURACY_PERIOD": 2, "SEMI.CUTMIX_PROB": 1.0, **extra})


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k, v in a.items():
        if isinstance(v, torch.Tensor):
            assert torch.allclose(v.float(), b[k].float(), atol=1e-6), (what, k)


def _interrupted_and_resumed(cfg) -> SegTrainer:
    killed = SegTrainer(cfg)
    record_losses(killed, stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    resumed = SegTrainer(cfg, resume=True)
    assert resumed.start_iter == 2
    resumed.losses = record_losses(resumed)
    resumed.train()
    return resumed


def _logged(out) -> tuple[str, list[dict]]:
    with open(os.path.join(out, "log.txt")) as f:
        log = f.read()
    with open(os.path.join(out, "events.jsonl")) as f:
        events = [json.loads(line) for line in f if line.strip()]
    return log, events


def test_distillation_keeps_the_teacher_frozen_logs_its_time_and_resumes_exactly(demo_root, tmp_path, teacher_file):
    full = SegTrainer(_distilling(demo_root, tmp_path / "full", teacher_file))
    teacher = full.frozen["teacher"]
    assert teacher is full.distiller.teacher and not teacher.training
    optimised = {id(p) for g in full.optimizer.param_groups for p in g["params"]}
    connector = full.distiller.criterion.connector
    assert not optimised & {id(p) for p in teacher.parameters()}
    assert {id(p) for p in connector.parameters()} <= optimised  # c4 (24 ch) -> c5 (32 ch): a trained 1x1 conv
    before, connector_before = _state(teacher), _state(connector)
    full_losses = record_losses(full)
    full.train()
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())  # weights and BN statistics
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    # Trained by the distillation loss: its parameters moved and the last step's gradients reach them (its BatchNorm
    # statistics move with any forward pass, and weight decay moves the weights without any loss).
    assert any(not torch.equal(p, connector_before[k]) for k, p in connector.named_parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in connector.parameters())
    assert {"loss_cwd", "loss_kd", "loss_cwd_feature", "teacher_ms"} <= set(full_losses[0])
    assert all(full_losses[it]["teacher_ms"] > 0 for it in full_losses)
    log, events = _logged(tmp_path / "full")
    assert "teacher_ms: " in log and "loss_cwd_feature: " in log
    assert all(e["teacher_ms"] > 0 for e in events if "loss" in e)

    cfg = _distilling(demo_root, tmp_path / "cut", teacher_file)
    resumed = _interrupted_and_resumed(cfg)
    for it in (2, 3):
        for name, value in full_losses[it].items():
            if name != "teacher_ms":  # a time, not a result
                assert resumed.losses[it][name] == pytest.approx(value, abs=1e-6), (it, name)
    a = load_checkpoint(os.path.join(tmp_path / "full", "model_final.pth"))
    b = load_checkpoint(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    _assert_same(a["model"], b["model"], "student")
    _assert_same(a["distill"], b["distill"], "projection")
    assert "connector.0.weight" in b["distill"] and set(b["frozen"]) == {"teacher"}
    assert not any("teacher" in k for k in b["model"])  # the teacher is rebuilt from its own file, never saved


def test_mean_teacher_run_logs_pseudo_labels_writes_its_split_and_resumes_exactly(demo_root, tmp_path):
    full = SegTrainer(_semi(demo_root, tmp_path / "full"))
    assert full.ema is full.semi.ema and not full.frozen  # the mean teacher: the base's EMA, no fixed teacher
    full_losses = record_losses(full)
    full.train()
    assert {"loss_unsup", "pseudo_share", "teacher_ms"} <= set(full_losses[0]) and "pseudo_acc" not in full_losses[0]
    assert "pseudo_acc" in full_losses[1]  # SEMI.ACCURACY_PERIOD 2: measured after iterations 2 and 4
    assert all(0.0 <= full_losses[it]["pseudo_share"] <= 1.0 for it in full_losses)
    log, events = _logged(tmp_path / "full")
    assert "pseudo_share: " in log and "pseudo_acc: " in log and "teacher_ms: " in log
    assert any("pseudo_acc" in e for e in events) and all("pseudo_share" in e for e in events if "loss" in e)
    labelled = open(tmp_path / "full" / "train_labelled.txt").read().splitlines()
    rest = open(tmp_path / "full" / "train_unlabelled.txt").read().splitlines()
    images = [{line.split()[0] for line in lines} for lines in (labelled, rest)]
    assert len(labelled) == len(rest) == 2 and not images[0] & images[1]

    cfg = _semi(demo_root, tmp_path / "cut")
    resumed = _interrupted_and_resumed(cfg)
    for it in (2, 3):
        for name, value in full_losses[it].items():
            if name != "teacher_ms":
                assert resumed.losses[it][name] == pytest.approx(value, abs=1e-6), (it, name)
    a = load_checkpoint(os.path.join(tmp_path / "full", "model_final.pth"))
    b = load_checkpoint(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    _assert_same(a["model"], b["model"], "student")
    _assert_same(a["ema"]["module"], b["ema"]["module"], "mean teacher")
    assert a["ema"]["num_updates"] == b["ema"]["num_updates"] == 4  # one update per step, none lost on resume


def test_a_fixed_teacher_pseudo_labels_and_distils_at_once(demo_root, tmp_path, teacher_file):
    cfg = _semi(demo_root, tmp_path, teacher_file, **{"SEMI.TEACHER": "fixed", "TEACHER.LOSSES": "['kd']",
                                                       "SOLVER.MAX_ITER": 2, "SOLVER.CHECKPOINT_PERIOD": 0})
    trainer = SegTrainer(cfg)
    assert trainer.ema is None and trainer.distiller.teacher is trainer.frozen["teacher"]
    before = _state(trainer.frozen["teacher"])
    seen = record_losses(trainer)
    trainer.train()
    assert {"loss_kd", "loss_unsup", "pseudo_share", "pseudo_acc", "teacher_ms"} <= set(seen[1])
    assert all(torch.equal(v, trainer.frozen["teacher"].state_dict()[k]) for k, v in before.items())


def test_the_weighted_unsupervised_and_distillation_terms_make_the_total(demo_root, tmp_path, teacher_file):
    cfg = _semi(demo_root, tmp_path, teacher_file, **{"SEMI.TEACHER": "fixed", "TEACHER.LOSSES": "['kd']",
                                                       "SEMI.LOSS_WEIGHT": 0.7, "TEACHER.LOSS_WEIGHTS": "[0.5]"})
    trainer = SegTrainer(cfg)
    batch = trainer.next_batch(0)

    def losses() -> dict[str, float]:
        torch.manual_seed(0)  # the same dropout and CutMix boxes in every call
        return {k: float(v.detach()) for k, v in trainer.compute_losses(batch).items()}

    full = losses()
    trainer.semi = None
    distilled = losses()
    trainer.distiller = None
    own = losses()
    assert full["loss_unsup"] > 0 and full["loss_kd"] > 0
    assert full["loss"] - distilled["loss"] == pytest.approx(0.7 * full["loss_unsup"], rel=1e-4)
    assert distilled["loss"] - own["loss"] == pytest.approx(0.5 * full["loss_kd"], rel=1e-4)


# ---------------------------------------------------------------- the CamVid configs
def _camvid_folder(root) -> str:
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            write_pair(root, split, f"0001TP_{i:06d}", rng.integers(0, 12, (48, 64), dtype=np.uint8))
    return str(root)


@pytest.mark.parametrize("name", ["pidnet_s_cpu_distill", "pidnet_s_cpu_distill_feature", "stdc1_cpu_distill",
                                  "stdc1_cpu_distill_feature",
                                  "bisenetv1_r18_cpu_pretrained_quarter", "bisenetv1_r18_cpu_pretrained_semi",
                                  "bisenetv1_r18_cpu_pretrained_semi_selftrain"])
def test_camvid_teacher_configs_build_and_train_an_iteration(tmp_path, monkeypatch, name):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    path = os.path.join(CONFIGS, f"{name}.yaml")
    small = ["DATASET.ROOT", _camvid_folder(tmp_path / "CamVid"), "OUTPUT_DIR", str(tmp_path / "run"),
             "MODEL.BACKBONE.WEIGHTS", "", "INPUT.CROP_SIZE", "[64, 64]", "SOLVER.IMS_PER_BATCH", "2",
             "SOLVER.MAX_ITER", "1", "SOLVER.WARMUP_ITERS", "0", "DATALOADER.NUM_WORKERS", "0", "LOG_PERIOD", "1"]
    written = load_cfg(path)
    if written.TEACHER.WEIGHTS:  # the teacher's run is not here: a randomly initialised model of its config
        assert written.TEACHER.WEIGHTS == load_cfg(os.path.join(CONFIGS, "..", "..", written.TEACHER.CONFIG)
                                                   ).OUTPUT_DIR + "/model_final.pth"
        tcfg = load_cfg(os.path.join(CONFIGS, "..", "..", written.TEACHER.CONFIG), ["MODEL.BACKBONE.WEIGHTS", ""])
        small += ["TEACHER.CONFIG", "", "TEACHER.WEIGHTS", _save_teacher(tcfg, tmp_path / "teacher.pth")]
    cfg = load_cfg(path, small)
    trainer = SegTrainer(cfg)
    seen = record_losses(trainer)
    trainer.train()
    distill = "_distill" in name
    mean_teacher, self_training = (name.endswith(s) for s in ("_semi", "_selftrain"))
    assert ("teacher" in trainer.frozen) == (distill or self_training)
    assert ("loss_cwd" in seen[0] and "loss_kd" in seen[0]) == distill
    assert ("loss_cwd_feature" in seen[0]) == name.endswith("_feature")
    assert ("loss_unsup" in seen[0]) == (mean_teacher or self_training)
    assert (trainer.ema is not None) == mean_teacher
    if "quarter" in name or "semi" in name:  # a quarter of 4 images: 1 labelled, 3 unlabelled
        assert len(open(tmp_path / "run" / "train_labelled.txt").read().splitlines()) == 1
        assert len(open(tmp_path / "run" / "train_unlabelled.txt").read().splitlines()) == 3
    assert glob.glob(str(tmp_path / "run" / "model_final.pth"))


# ---------------------------------------------------------------- two processes
def _train_and_dump(rank: int, world: int, port: int, opts: list[str], dump: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from segkit.utils.comm import cleanup

    try:
        trainer = SegTrainer(load_cfg(None, opts))
        trainer.train()
        torch.save({"distill": trainer.distiller.criterion.state_dict(), "ema": trainer.ema.state_dict()["module"]},
                   os.path.join(dump, f"rank{rank}.pth"))
    finally:
        cleanup()


def test_two_processes_distil_and_pseudo_label_with_one_projection_and_one_mean_teacher(demo_root, tmp_path):
    import torch.multiprocessing as mp

    from .test_seg_trainer_ddp import _free_port

    # BiSeNetV1-R18 (tiny_opts' model: spawned processes know no test backbone), taught by a random one of its kind.
    teacher = _save_teacher(load_cfg(None, tiny_opts(demo_root, tmp_path / "t")), tmp_path / "teacher.pth")
    opts = tiny_opts(demo_root, tmp_path / "run", **{
        "SOLVER.IMS_PER_BATCH": 4, "SOLVER.CHECKPOINT_PERIOD": 0, "SOLVER.MAX_ITER": 2, "TEACHER.WEIGHTS": teacher,
        "TEACHER.LOSSES": "['cwd', 'cwd_feature']", "TEACHER.STUDENT_FEATURE": "backbone:c4",
        "TEACHER.TEACHER_FEATURE": "backbone:c5", "SEMI.ENABLED": True, "DATASET.TRAIN_SUBSET": 0.5,
        "DATASET.UNLABELED": "train_rest", "SEMI.THRESHOLD": 0.05, "SEMI.ACCURACY_PERIOD": 1})
    mp.start_processes(_train_and_dump, args=(2, _free_port(), opts, str(tmp_path)), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pth") for r in (0, 1)]
    # Each process saw other images: without averaged gradients their projections would part.
    _assert_same(ranks[0]["distill"], ranks[1]["distill"], "projection on both ranks")
    _assert_same(ranks[0]["ema"], ranks[1]["ema"], "mean teacher on both ranks")
    ckpt = load_checkpoint(os.path.join(tmp_path / "run", "model_final.pth"))
    _assert_same(ckpt["distill"], ranks[0]["distill"], "saved projection")
    log, _ = _logged(tmp_path / "run")
    assert "teacher_ms: " in log and "pseudo_acc: " in log
