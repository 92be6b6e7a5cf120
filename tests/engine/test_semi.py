"""Semi-supervision: the mean-teacher step, the confidence threshold, CutMix keeping images and pseudo-labels
aligned, the unsupervised loss and the logged pseudo-label figures."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segkit.config import ConfigError, get_cfg
from segkit.engine.semi import SemiSupervision, class_balanced, cutmix_boxes, mix


def _cfg(**semi):
    cfg = get_cfg()
    for k, v in semi.items():
        cfg.SEMI[k] = v
    return cfg


class Identity1x1(nn.Conv2d):
    """A 3-class 'segmentor' whose logits are its input image scaled by 10: its pseudo-labels are a pure
    function of the pixels, so they can be checked against the images after CutMix."""

    def __init__(self) -> None:
        super().__init__(3, 3, 1, bias=False)
        with torch.no_grad():
            self.weight.copy_(10 * torch.eye(3).view(3, 3, 1, 1))


def _batch(n=4, h=16, w=20):
    weak = torch.rand(n, 3, h, w)
    valid = torch.ones(n, h, w, dtype=torch.bool)
    valid[:, :, -3:] = False  # padding on the right
    return {"image": weak, "image_strong": weak.clone(), "valid": valid}


def test_mean_teacher_update_is_one_hand_computed_ema_step():
    student = nn.Conv2d(3, 2, 1)
    semi = SemiSupervision(_cfg(EMA_DECAY=0.99), student)
    start = student.weight.detach().clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    # SegTrainer adopts semi.ema as its EMA, which the base trainer updates after every optimiser step
    # (and checkpoints as "ema"): tests/engine/test_seg_trainer_teacher.py runs that path whole.
    semi.ema.update(student)
    # First update: the warmed-up decay min(0.99, (1 + 0) / (10 + 0)) = 0.1.
    expected = 0.1 * start + 0.9 * (start + 1.0)
    assert torch.allclose(semi.ema.module.weight, expected, atol=1e-6)
    assert not semi.ema.module.weight.requires_grad
    # The pseudo-labels come from the updated average, not from the student or a copy of its start.
    images = torch.rand(2, 3, 4, 4)
    assert torch.allclose(semi.teach(images), F.conv2d(images, expected, student.bias.detach()), atol=1e-5)


def test_pseudo_labels_count_only_where_the_confidence_reaches_the_threshold():
    semi = SemiSupervision(_cfg(THRESHOLD=0.9, CUTMIX_PROB=0.0), Identity1x1())
    batch = _batch()
    targets = semi.prepare(batch)
    conf, labels = torch.softmax(10 * batch["image"], 1).max(1)
    assert torch.equal(targets.labels, labels)
    assert torch.equal(targets.confident, (conf >= 0.9) & batch["valid"])
    assert 0 < targets.share.item() < 1
    assert targets.share.item() == pytest.approx(((conf >= 0.9) & batch["valid"]).sum().item()
                                                 / batch["valid"].sum().item())
    none = SemiSupervision(_cfg(THRESHOLD=1.0, CUTMIX_PROB=0.0), Identity1x1()).prepare(batch)
    assert not none.confident.any()


def test_class_balanced_selection_keeps_the_most_confident_share_of_each_class():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2])
    conf = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.99])
    candidates = torch.tensor([True] * 7 + [False])
    # keep 0.5: class 0 its top 2 of 4, class 1 its top ceil(1.5) = 2 of 3 (though less confident than class 0's
    # dropped pixels); class 2 is not a candidate.
    kept = class_balanced(labels, conf, candidates, 0.5)
    assert kept.tolist() == [True, True, False, False, True, True, False, False]
    assert torch.equal(class_balanced(labels, conf, candidates, 1.0), candidates)
    ties = class_balanced(torch.zeros(4, dtype=torch.long), torch.tensor([0.5, 0.5, 0.5, 0.1]),
                          torch.ones(4, dtype=torch.bool), 0.25)
    assert ties.tolist() == [True, True, True, False]  # ties at the cut are kept


def test_class_keep_applies_to_the_pseudo_labels_and_to_their_logged_accuracy():
    semi = SemiSupervision(_cfg(THRESHOLD=0.0, CUTMIX_PROB=0.0, CLASS_KEEP=0.5, ACCURACY_PERIOD=1), Identity1x1())
    batch = _batch()
    targets = semi.prepare(batch)
    conf, labels = torch.softmax(10 * batch["image"], 1).max(1)
    for c in range(3):
        member = (labels == c) & batch["valid"]
        kept = targets.confident & member
        assert kept.sum() == math.ceil(member.sum().item() / 2)
        assert conf[kept].min() >= conf[member & ~kept].max()
    assert targets.share.item() == pytest.approx(targets.confident.sum().item() / batch["valid"].sum().item())
    # On a labelled batch (no padding), wrong labels only where the selection drops pixels: the accuracy over
    # the pixels that count stays 1, over all of them it falls.
    batch["valid"][:] = True
    kept = semi.prepare(batch).confident
    wrong = torch.where(kept, labels, (labels + 1) % 3)
    acc = semi.pseudo_label_accuracy(batch["image"], wrong, iteration=0)
    assert acc["pseudo_acc_confident"].item() == 1.0
    assert acc["pseudo_acc"].item() == pytest.approx(kept.float().mean().item())


def test_cutmix_moves_image_pseudo_label_confidence_and_valid_mask_together():
    torch.manual_seed(3)
    semi = SemiSupervision(_cfg(THRESHOLD=0.6, CUTMIX_PROB=1.0, TEACHER="ema"), Identity1x1())
    batch = _batch()
    batch["valid"][1] = True  # one image without padding: a box from it brings valid pixels into the padding
    targets = semi.prepare(batch)
    mixed_away = ~torch.isclose(targets.images, batch["image_strong"]).all(1)
    assert mixed_away.any()  # some boxes were pasted
    # The teacher is a function of the pixels: pseudo-label and confidence of the mixed image are what the
    # teacher says about the mixed pixels, everywhere.
    conf, labels = torch.softmax(10 * targets.images, 1).max(1)
    assert torch.equal(targets.labels, labels)
    assert torch.equal(targets.confident, (conf >= 0.6) & targets.valid)
    partner = torch.roll(torch.arange(4), 1)
    assert torch.equal(targets.valid, torch.where(mixed_away, batch["valid"][partner], batch["valid"]))


def test_cutmix_boxes_follow_the_probability_and_the_area_range():
    g = torch.Generator().manual_seed(0)
    boxes = cutmix_boxes(200, 40, 50, 0.5, generator=g)
    share = boxes.flatten(1).float().mean(1)
    drawn = share[share > 0]
    assert 70 < len(drawn) < 130
    assert drawn.min() >= 0.015 and drawn.max() <= 0.45
    assert not cutmix_boxes(5, 8, 8, 0.0).any()
    x = torch.arange(2 * 1 * 2 * 2).view(2, 1, 2, 2)
    box = torch.tensor([[[True, False], [False, False]], [[False, False], [False, False]]])
    assert mix(x, box, torch.tensor([1, 0]))[0, 0, 0, 0] == x[1, 0, 0, 0]


def test_unsupervised_loss_is_ce_on_confident_pixels_over_the_valid_ones():
    semi = SemiSupervision(_cfg(THRESHOLD=0.0, CUTMIX_PROB=0.0, LOSS_WEIGHT=2.0), nn.Conv2d(3, 3, 1))
    from segkit.engine.semi import PseudoTargets

    labels = torch.tensor([[[0, 1, 2, 0]]])
    confident = torch.tensor([[[True, True, False, False]]])
    valid = torch.tensor([[[True, True, True, False]]])
    logits = torch.zeros(1, 3, 1, 4, requires_grad=True)
    targets = PseudoTargets(torch.zeros(1, 3, 1, 4), labels, confident, valid, torch.tensor(0.5))
    total, parts = semi.loss((logits, {}), targets)
    # Two confident pixels with uniform logits, CE ln 3 each, over 3 valid pixels.
    assert parts["loss_unsup"].item() == pytest.approx(2 * torch.log(torch.tensor(3.0)).item() / 3, rel=1e-6)
    assert total.item() == pytest.approx(2.0 * parts["loss_unsup"].item())
    total.backward()
    assert logits.grad[..., 2:].abs().sum() == 0 and logits.grad[..., :2].abs().sum() > 0


def test_pseudo_label_accuracy_on_the_labelled_batch_every_period():
    semi = SemiSupervision(_cfg(THRESHOLD=0.9, ACCURACY_PERIOD=2), Identity1x1())
    images = torch.rand(2, 3, 6, 6)
    pred = images.argmax(1)
    labels = pred.clone()
    labels[0, 0] = (pred[0, 0] + 1) % 3  # one wrong row of 6 pixels
    labels[1, 0] = 255  # one ignored row
    assert semi.pseudo_label_accuracy(images, labels, iteration=0) == {}
    acc = semi.pseudo_label_accuracy(images, labels, iteration=1)
    assert acc["pseudo_acc"].item() == pytest.approx((66 - 6) / 66)
    conf = torch.softmax(10 * images, 1).max(1).values
    confident = (conf >= 0.9) & (labels != 255)
    right = (pred == labels) & confident
    assert acc["pseudo_acc_confident"].item() == pytest.approx(right.sum().item() / confident.sum().item())
    never = SemiSupervision(_cfg(THRESHOLD=1.0, ACCURACY_PERIOD=1), Identity1x1())
    assert set(never.pseudo_label_accuracy(images, labels, iteration=0)) == {"pseudo_acc"}


@pytest.mark.parametrize("semi, message", [
    ({"TEACHER": "fixed"}, r"SEMI\.TEACHER 'fixed' needs TEACHER\.CONFIG and TEACHER\.WEIGHTS"),
    ({"TEACHER": "self"}, r"SEMI\.TEACHER must be 'ema' or 'fixed', got 'self'"),
    ({"THRESHOLD": 1.5}, r"SEMI\.THRESHOLD must be in \[0, 1\]"),
    ({"CLASS_KEEP": 0.0}, r"SEMI\.CLASS_KEEP must be in \(0, 1\], got 0\.0"),
    ({"EMA_DECAY": 1.0}, r"SEMI\.EMA_DECAY: EMA decay must be in \[0, 1\)"),
])
def test_bad_semi_settings_are_named(semi, message):
    with pytest.raises(ConfigError, match=message):
        SemiSupervision(_cfg(**semi), nn.Conv2d(3, 3, 1))
