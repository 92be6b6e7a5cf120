"""The frozen teacher: built from a config and a checkpoint, never trained, never changed; the distiller."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.config import ConfigError
from segkit.engine.teacher import FeatureTap, FrozenTeacher, build_distiller, build_teacher, check_weights
from segkit.losses import build_criterion
from segkit.models import build_model
from segkit.solver import build_optimizer
from tests.zoo.conftest import NAME, official_file, zoo  # noqa: F401  (zoo: a fixture of a tiny zoo entry)

CLASSES = 5


@pytest.fixture
def teacher_files(tmp_path, seg_cfg):
    """(config path, checkpoint path) of a tiny FCN teacher with 5 classes."""
    tcfg = seg_cfg("fcn", "tiny", 32, "MODEL.NUM_CLASSES", str(CLASSES))
    path = tmp_path / "teacher.yaml"
    path.write_text(tcfg.dump())
    torch.manual_seed(1)
    ckpt = tmp_path / "teacher.pth"
    torch.save({"model": build_model(tcfg).state_dict()}, ckpt)
    return str(path), str(ckpt)


@pytest.fixture
def student_cfg(seg_cfg, teacher_files):
    def make(*opts: str):
        return seg_cfg("fcn", "tiny", 32, "MODEL.NUM_CLASSES", str(CLASSES), "INPUT.CROP_SIZE", "[32, 48]",
                       "TEACHER.CONFIG", teacher_files[0], "TEACHER.WEIGHTS", teacher_files[1], *opts)
    return make


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_teacher_is_frozen_in_eval_mode_and_a_parent_train_call_does_not_flip_it(student_cfg):
    teacher = build_teacher(student_cfg())
    assert isinstance(teacher, FrozenTeacher)
    assert not any(p.requires_grad for p in teacher.parameters())
    parent = nn.ModuleDict({"student": nn.Conv2d(3, 3, 1), "teacher": teacher})
    parent.train()
    assert parent["student"].training
    assert not any(m.training for m in teacher.modules())
    out = teacher(torch.randn(2, 3, 32, 48))
    assert out.logits.shape == (2, CLASSES, 32, 48) and out.feature is None
    assert teacher.last_ms > 0
    with torch.inference_mode():  # evaluation code may call it inside inference mode
        assert teacher(torch.randn(1, 3, 32, 48)).logits.shape[1] == CLASSES


def test_teacher_never_changes_nor_receives_gradients_while_the_student_trains(student_cfg):
    cfg = student_cfg("TEACHER.LOSSES", "['kd', 'cwd', 'cwd_feature']", "TEACHER.STUDENT_FEATURE", "backbone:c4",
                      "TEACHER.TEACHER_FEATURE", "backbone:c5", "SOLVER.BASE_LR", "0.1")
    student = build_model(cfg).train()
    distiller = build_distiller(cfg, student)
    teacher, criterion = distiller.teacher, build_criterion(cfg, student)
    optimizer = build_optimizer(cfg, student, extra_modules=[distiller.criterion])
    connector = distiller.criterion.connector
    assert isinstance(connector, nn.Sequential)  # c4 (24 channels) against c5 (32): a 1x1 conv + BN
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert all(id(p) in optimised for p in connector.parameters())
    assert not any(id(p) in optimised for p in teacher.parameters())
    before_teacher, before_connector = _state(teacher), _state(connector)
    torch.manual_seed(0)
    images, labels = torch.randn(2, 3, 32, 48), torch.randint(0, CLASSES, (2, 32, 48))
    for _ in range(3):
        outputs = student(images)
        own, _ = criterion(outputs, labels)
        taught, parts = distiller(outputs, images, labels)
        assert sorted(parts) == ["loss_cwd", "loss_cwd_feature", "loss_kd"]
        optimizer.zero_grad()
        (own + taught).backward()
        optimizer.step()
    after = _state(teacher)
    assert after.keys() == before_teacher.keys()
    assert all(torch.equal(after[k], before_teacher[k]) for k in after)  # weights and BN statistics alike
    assert all(p.grad is None for p in teacher.parameters())
    assert any(not torch.equal(v, before_connector[k]) for k, v in _state(connector).items())


def test_distiller_resizes_nothing_it_need_not_and_weights_default_to_the_published_ones(student_cfg):
    cfg = student_cfg("TEACHER.LOSSES", "['kd', 'cwd']")
    student = build_model(cfg).train()
    distiller = build_distiller(cfg, student)
    assert distiller.criterion.weights == {"kd": 1.0, "cwd": 3.0}
    assert isinstance(distiller.criterion.connector, nn.Identity) and distiller.student_tap is None
    cfg2 = student_cfg("TEACHER.LOSSES", "['kd']", "TEACHER.LOSS_WEIGHTS", "[0.5]")
    assert build_distiller(cfg2, build_model(cfg2)).criterion.weights == {"kd": 0.5}


def test_no_teacher_without_weights_and_no_distiller_without_terms(student_cfg):
    from segkit.config import get_cfg

    assert build_teacher(get_cfg()) is None and build_distiller(get_cfg(), nn.Identity()) is None
    cfg = student_cfg("TEACHER.LOSSES", "[]")  # a teacher for SEMI.TEACHER 'fixed' only
    assert build_distiller(cfg, build_model(cfg)) is None and build_teacher(cfg) is not None
    teacher = build_teacher(cfg)
    cfg = student_cfg("TEACHER.LOSSES", "['kd']")
    assert build_distiller(cfg, build_model(cfg), teacher=teacher).teacher is teacher


@pytest.mark.parametrize("opts, message", [
    (["TEACHER.WEIGHTS", "/nowhere/model_final.pth"], r"TEACHER\.WEIGHTS: checkpoint not found: /nowhere"),
    (["TEACHER.WEIGHTS", "zoo:no_such_model"], r"TEACHER\.WEIGHTS 'zoo:no_such_model': no zoo entry 'no_such_model'"),
    (["TEACHER.CONFIG", ""], r"TEACHER\.CONFIG is empty and TEACHER\.WEIGHTS .* carries no config"),
    (["TEACHER.LOSSES", "['ce']"], r"TEACHER\.LOSSES 'ce' is not a distillation loss"),
    (["TEACHER.LOSSES", "['focal']"], r"unknown TEACHER\.LOSSES 'focal'"),
    (["TEACHER.LOSSES", "['kd', 'cwd']", "TEACHER.LOSS_WEIGHTS", "[1.0]"], r"one TEACHER\.LOSS_WEIGHTS entry each"),
    (["TEACHER.LOSSES", "['cwd_feature']"], r"set both exactly when TEACHER\.LOSSES has it"),
    (["TEACHER.LOSSES", "['cwd_feature']", "TEACHER.STUDENT_FEATURE", "nope", "TEACHER.TEACHER_FEATURE", "backbone:c5"],
     r"TEACHER\.STUDENT_FEATURE 'nope': FCN has no module 'nope'"),
    (["INPUT.MEAN", "[0.5, 0.5, 0.5]"], r"INPUT\.MEAN of the teacher .* is \[0\.485"),
])
def test_bad_teacher_settings_are_named(student_cfg, opts, message):
    cfg = student_cfg(*opts)
    with pytest.raises((ConfigError, ValueError), match=message):
        build_distiller(cfg, build_model(cfg))


def test_a_teacher_of_other_classes_is_refused(seg_cfg, teacher_files):
    cfg = seg_cfg("fcn", "tiny", 32, "MODEL.NUM_CLASSES", "7", "TEACHER.CONFIG", teacher_files[0],
                  "TEACHER.WEIGHTS", teacher_files[1])
    with pytest.raises(ConfigError, match=r"MODEL\.NUM_CLASSES of the teacher .* is 5, the student's is 7"):
        build_teacher(cfg)


def test_feature_tap_takes_a_module_output_or_one_entry_of_it(seg_cfg):
    model = build_model(seg_cfg("fcn")).eval()
    whole, entry = FeatureTap(model, "decode_head"), FeatureTap(model, "backbone:c4")
    model(torch.randn(1, 3, 32, 32))
    assert entry.pop().shape[1] == 24 and whole.pop().dim() == 4
    with pytest.raises(RuntimeError, match="captured nothing"):
        entry.pop()
    bad = FeatureTap(model, "backbone")
    with pytest.raises(ValueError, match="name a dict entry with ':key'"):
        model(torch.randn(1, 3, 32, 32))
    bad.remove()


def test_check_weights_passes_a_file_and_a_known_zoo_name_through(tmp_path):
    from segkit.zoo import ENTRIES

    f = tmp_path / "w.pth"
    f.write_bytes(b"x")
    assert check_weights(str(f)) == str(f)
    name = f"zoo:{sorted(ENTRIES)[0]}"
    assert check_weights(name) == name  # fetched only when the teacher loads


def test_weights_that_carry_their_config_need_no_teacher_config(seg_cfg, tmp_path):
    tcfg = seg_cfg("fcn", "tiny", 32, "MODEL.NUM_CLASSES", str(CLASSES))
    torch.manual_seed(2)
    model = build_model(tcfg)
    ckpt = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict(), "config": tcfg.dump()}, ckpt)
    cfg = seg_cfg("fcn", "tiny", 32, "MODEL.NUM_CLASSES", str(CLASSES), "TEACHER.WEIGHTS", str(ckpt))
    teacher = build_teacher(cfg)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in teacher.model.state_dict().items())
    other = tmp_path / "other.yaml"  # an explicit config must build the model the weights hold
    other.write_text(seg_cfg("fcn", "tiny", 32, "MODEL.NUM_CLASSES", "3").dump())
    with pytest.raises(ConfigError, match=r"TEACHER\.CONFIG .*other\.yaml.*MODEL\.NUM_CLASSES 3 \(weights: 5\)"):
        build_teacher(seg_cfg("fcn", "tiny", 32, "MODEL.NUM_CLASSES", str(CLASSES), "TEACHER.WEIGHTS", str(ckpt),
                              "TEACHER.CONFIG", str(other)))


@pytest.mark.parametrize("form", ["zoo", "official file"])
def test_a_zoo_name_or_an_official_file_teaches_with_the_config_it_implies(zoo, tmp_path, form):  # noqa: F811
    entry, zoo_cfg, model = zoo
    weights = f"zoo:{NAME}" if form == "zoo" else str(official_file(model.state_dict(), tmp_path / "published.pth"))
    student = zoo_cfg.clone()
    student.merge_from_list(["MODEL.NAME", "fcn", "TEACHER.WEIGHTS", weights])  # TEACHER.CONFIG: the entry's
    teacher = build_teacher(student)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in teacher.model.state_dict().items())
    assert not any(p.requires_grad for p in teacher.parameters())
