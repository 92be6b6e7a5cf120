import json
import os
from collections import OrderedDict

import pytest
import torch
from torch import nn

from segkit.config import get_cls_cfg
from segkit.models.backbones import BACKBONES, Backbone, ShapeSpec, build_backbone
from segkit.pretrain import (ClsTrainer, build_cls_dataset, classifier_backbone_state, export_backbone,
                             make_demo_cls_dataset, topk_correct)
from segkit.utils.checkpoint import find_last_checkpoint, load_checkpoint
from segkit.engine import TRAINING_KEYS

# Stripe orientations: learnable in a few dozen steps by a tiny net at 32 px on one core.
CLASSES = ("hstripes", "vstripes", "diagonal")


class TinyBackbone(Backbone):
    """A 5-conv backbone keeping the zoo contract, so that training tests take seconds on one core."""

    def __init__(self, output_stride: int = 32, norm: str = "BN", **kw) -> None:
        super().__init__()
        chans = (3, 16, 16, 32, 32, 64)

        def block(i):  # the stem keeps full resolution (stride 2 after it): cheap at 32 px, and learns faster
            return nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, 1 if i == 0 else 2, 1, bias=False),
                                 nn.BatchNorm2d(chans[i + 1]), nn.ReLU(inplace=True), nn.MaxPool2d(2) if i == 0 else nn.Identity())

        self.stem, self.layer1, self.layer2, self.layer3, self.layer4 = (block(i) for i in range(5))
        self._out_shapes = OrderedDict((n, ShapeSpec(chans[i + 2], 4 * 2**i)) for i, n in enumerate(("c2", "c3", "c4", "c5")))

    def stages(self):
        return [self.stem, self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x):
        out = OrderedDict()
        x = self.stem(x)
        for name, layer in zip(("c2", "c3", "c4", "c5"), self.stages()[1:]):
            x = out[name] = layer(x)
        return out


@pytest.fixture(autouse=True)
def tiny_backbone(monkeypatch):
    monkeypatch.setitem(BACKBONES, "tiny_test", TinyBackbone)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls_data")
    return make_demo_cls_dataset(str(root), train_per_class=40, val_per_class=10, size=36, classes=CLASSES)


def tiny_cfg(root, out, epochs=3, **solver):
    cfg = get_cls_cfg()
    cfg.OUTPUT_DIR = str(out)
    cfg.LOG_PERIOD = 100
    cfg.MODEL.NAME, cfg.MODEL.NUM_CLASSES = "tiny_test", len(CLASSES)
    cfg.DATASET.ROOT = root
    cfg.INPUT.TRAIN_SIZE = cfg.INPUT.VAL_SIZE = 32
    cfg.INPUT.RRC_SCALE = [0.5, 1.0]
    cfg.SOLVER.BASE_LR, cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.EPOCHS, cfg.SOLVER.WARMUP_EPOCHS = 1.0, 16, epochs, 0
    cfg.SOLVER.WEIGHT_DECAY = 0.0
    for k, v in solver.items():
        cfg.SOLVER[k] = v
    cfg.EMA.DECAY = 0.9
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def test_training_beats_chance_and_exports_a_loadable_backbone(data_root, tmp_path):
    cfg = tiny_cfg(data_root, tmp_path, epochs=5)
    cfg.freeze()
    trainer = ClsTrainer(cfg)
    metrics = trainer.train()
    chance = 100.0 / len(CLASSES)
    best = json.load(open(tmp_path / "metrics.json"))["best_top1"]
    assert best >= chance + 25, f"best top-1 {best} vs chance {chance}"
    saved = json.load(open(tmp_path / "metrics.json"))
    assert {"top1", "top5", "ema_top1", "ema_top5", "epoch"} <= set(saved) and saved["epoch"] == 5
    assert saved["top1"] == pytest.approx(metrics["top1"]) and saved["top5"] == 100.0  # 3 classes: top-5 is all
    # Checkpoints as segmentation names them: one periodic model_<iteration>.pth (the newest epoch's only),
    # model_final.pth as the resume point of a finished run, and model_best.pth beside them.
    periodic = f"model_{4 * trainer.iters_per_epoch:07d}.pth"
    for name in ("model_best.pth", periodic, "model_final.pth", "backbone_final.pth", "config.yaml"):
        assert (tmp_path / name).is_file(), name
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith("model_0")) == [periodic]
    assert find_last_checkpoint(str(tmp_path)) == str(tmp_path / "model_final.pth")
    ckpt = load_checkpoint(str(tmp_path / "model_final.pth"))
    assert set(ckpt) == set(TRAINING_KEYS) | {"epoch", "best_top1", "best_epoch", "history", "epoch_loss"}
    assert (ckpt["kind"], ckpt["model_name"], ckpt["epoch"]) == ("classifier", "tiny_test", 5)
    assert ckpt["iteration"] == 5 * trainer.iters_per_epoch and "IMS_PER_BATCH: 16" in ckpt["config"]
    export = torch.load(tmp_path / "backbone_final.pth", weights_only=True)
    backbone = build_backbone("tiny_test")
    result = backbone.load_state_dict(export, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert all(torch.equal(v, final["model"]["backbone." + k]) for k, v in export.items())  # raw weights by default
    ema_out = tmp_path / "ema_backbone.pth"
    ema = export_backbone(str(tmp_path / "model_final.pth"), str(ema_out), use_ema=True)
    assert set(ema) == set(export) and any(not torch.equal(ema[k], export[k]) for k in export)


def test_resume_continues_the_same_curve(data_root, tmp_path, monkeypatch):
    def run(out, resume=False):
        cfg = tiny_cfg(data_root, out, epochs=2)
        cfg.AUG.MIXUP_ALPHA, cfg.AUG.CUTMIX_ALPHA = 0.4, 1.0  # the mixing draws must replay too
        cfg.freeze()
        return ClsTrainer(cfg, resume=resume)

    straight = run(tmp_path / "a")
    straight.train()

    crashed = run(tmp_path / "b")
    step = crashed.run_step

    def crash_in_second_epoch(batch, it):
        if it == crashed.iters_per_epoch + 1:  # mid-epoch: the epoch-1 checkpoint is the resume point
            raise KeyboardInterrupt("simulated crash")
        return step(batch, it)

    crashed.run_step = crash_in_second_epoch
    with pytest.raises(KeyboardInterrupt):
        crashed.train()
    assert find_last_checkpoint(str(tmp_path / "b")).endswith(f"model_{straight.iters_per_epoch:07d}.pth")
    resumed = run(tmp_path / "b", resume=True)
    assert resumed.start_epoch == 1
    resumed.train()
    assert len(resumed.history) == 2
    for a, b in zip(straight.history, resumed.history):
        for key in ("train_loss", "val_loss", "top1", "ema_top1"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["epoch"], key)
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-5) for k in sa)


def test_export_refuses_non_classifier_checkpoints(tmp_path):
    seg = {"backbone.conv1.weight": torch.zeros(1), "decode_head.conv.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match="not a segkit classifier"):
        classifier_backbone_state(seg, "seg.pth")
    torch.save({"kind": "segmentor", "model": seg}, tmp_path / "seg.pth")
    with pytest.raises(ValueError, match="'segmentor' checkpoint, not a classifier"):
        export_backbone(str(tmp_path / "seg.pth"), str(tmp_path / "out.pth"))
    torch.save({"model": {"fc.weight": torch.zeros(2, 2), "backbone.x": torch.ones(1)}}, tmp_path / "cls.pth")
    with pytest.raises(ValueError, match="no EMA weights"):
        export_backbone(str(tmp_path / "cls.pth"), str(tmp_path / "out.pth"), use_ema=True)
    assert set(export_backbone(str(tmp_path / "cls.pth"), str(tmp_path / "out.pth"))) == {"x"}
    assert not os.path.exists(tmp_path / "seg_out.pth")


def test_topk_correct_counts():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05], [0.2, 0.3, 0.5]])
    assert topk_correct(logits, torch.tensor([1, 2, 0])) == [1, 3]  # k=5 capped at 3 classes
    assert topk_correct(logits, torch.tensor([1, 0, 2]), ks=(1, 2)) == [3, 3]


def test_class_count_mismatch_names_the_key(data_root, tmp_path):
    cfg = tiny_cfg(data_root, tmp_path)
    cfg.MODEL.NUM_CLASSES = 7
    with pytest.raises(ValueError, match="MODEL.NUM_CLASSES is 7"):
        build_cls_dataset(cfg, train=True)


def test_distillation_from_a_teacher_checkpoint(data_root, tmp_path):
    from segkit.models.classifier import create_classifier

    teacher = create_classifier("tiny_test", num_classes=len(CLASSES))
    torch.save({"kind": "classifier", "model": teacher.state_dict()}, tmp_path / "teacher.pth")
    cfg = tiny_cfg(data_root, tmp_path / "out", epochs=1)
    cfg.KD.TEACHER_WEIGHTS, cfg.KD.ALPHA, cfg.KD.TEMPERATURE = str(tmp_path / "teacher.pth"), 1.0, 2.0
    cfg.freeze()
    trainer = ClsTrainer(cfg)
    assert trainer.teacher is not None and not trainer.teacher.training
    assert torch.equal(trainer.teacher.fc.weight, teacher.fc.weight)
    metrics = trainer.train()
    assert metrics["epoch"] == 1 and metrics["train_loss"] >= 0.0  # alpha 1: pure KL to the teacher, >= 0
    bad = tiny_cfg(data_root, tmp_path / "bad", epochs=1)
    bad.KD.TEACHER_WEIGHTS = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        ClsTrainer(bad)


def test_events_and_tensorboard_of_pretraining(data_root, tmp_path):
    from segkit.utils.events import read_events

    cfg = tiny_cfg(data_root, tmp_path / "tb", epochs=1)
    cfg.LOG.TENSORBOARD = True
    ClsTrainer(cfg).train()
    records = read_events(str(tmp_path / "tb" / "events.jsonl"))
    assert any("loss" in r and "lr" in r for r in records)
    epoch_end = [r for r in records if "top1" in r]
    assert len(epoch_end) == 1 and "ema_top1" in epoch_end[0]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb" / "tb"))


@pytest.mark.parametrize("key, value, message", [
    ("INPUT.VAL_SIZE", 0, "INPUT.VAL_SIZE must be >= 1, got 0"),
    ("INPUT.TRAIN_SIZE", 0, "INPUT.TRAIN_SIZE must be >= 1, got 0"),
    ("SOLVER.IMS_PER_BATCH", 0, "SOLVER.IMS_PER_BATCH must be >= 1, got 0"),
    ("DATALOADER.VAL_BATCH_SIZE", -3, r"DATALOADER.VAL_BATCH_SIZE must be >= 1 \(or 0: the per-process training "
                                      r"batch\), got -3"),
    ("INPUT.RRC_SCALE", [0.9, 0.1], r"INPUT.RRC_SCALE must be a range \[lo, hi\] with 0 < lo <= hi <= 1, got \[0.9, 0.1\]"),
    ("INPUT.RRC_SCALE", [0.5, 1.5], r"INPUT.RRC_SCALE .* got \[0.5, 1.5\]"),
    ("INPUT.RRC_SCALE", [0.0, 1.0], r"INPUT.RRC_SCALE .* got \[0.0, 1.0\]"),
    ("INPUT.RRC_RATIO", [1.33, 0.75], r"INPUT.RRC_RATIO must be a range \[lo, hi\] with 0 < lo <= hi, got \[1.33, 0.75\]"),
    ("INPUT.RRC_RATIO", [1.0], r"INPUT.RRC_RATIO .* got \[1.0\]"),
    ("SOLVER.HEAD_LR_MULT", 10.0, r"SOLVER.HEAD_LR_MULT 10.0: a classifier has no head modules"),
])
def test_bad_input_and_batch_values_are_refused_by_name_before_anything_runs(key, value, message, tmp_path):
    from segkit.config import ConfigError

    # A data root that does not exist and an output folder never created: the check comes before both.
    cfg = tiny_cfg(str(tmp_path / "no_data"), tmp_path / "out")
    section, name = key.split(".")
    cfg[section][name] = value
    with pytest.raises(ConfigError, match=message):
        ClsTrainer(cfg)
    assert not os.path.exists(tmp_path / "out")


def test_eval_only_checks_what_evaluation_reads(tmp_path):
    from segkit.config import ConfigError
    from segkit.pretrain import evaluate_weights
    from segkit.pretrain.data import check_cls_config

    cfg = tiny_cfg(str(tmp_path / "no_data"), tmp_path / "out")
    cfg.INPUT.RRC_SCALE, cfg.INPUT.RRC_RATIO = [1.0, 1.0], [1.0, 1.0]  # the edges of the ranges are valid
    check_cls_config(cfg)
    cfg.INPUT.TRAIN_SIZE = 0  # not read by evaluation
    check_cls_config(cfg, train=False)
    cfg.INPUT.VAL_SIZE = 0
    with pytest.raises(ConfigError, match="INPUT.VAL_SIZE must be >= 1, got 0"):
        evaluate_weights(cfg, str(tmp_path / "missing.pth"))


def test_eval_only_scores_the_raw_or_the_ema_weights_as_training_did(data_root, tmp_path, monkeypatch):
    from segkit.pretrain import evaluate_weights
    import segkit.pretrain.trainer as trainer_module

    cfg = tiny_cfg(data_root, tmp_path, epochs=1)
    cfg.freeze()
    trainer = ClsTrainer(cfg)
    # Validation first puts rank 0's BN statistics (raw and EMA) on every process, as the checkpoint holds them.
    broadcast = []
    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "broadcast_buffers", lambda module: broadcast.append(module))
        trainer._validate()
    assert trainer.eval_model in broadcast and trainer.ema.module in broadcast
    trainer.train()
    last = json.load(open(tmp_path / "metrics.json"))  # the last epoch's
    final = str(tmp_path / "model_final.pth")
    assert evaluate_weights(cfg, final)["top1"] == pytest.approx(last["top1"])
    assert evaluate_weights(cfg, final, use_ema=True)["top1"] == pytest.approx(last["ema_top1"])
    bare = tmp_path / "bare.pth"
    torch.save(trainer.eval_model.state_dict(), bare)
    with pytest.raises(ValueError, match=f"{bare} has no EMA weights"):
        evaluate_weights(cfg, str(bare), use_ema=True)
