"""Distillation losses against values computed by hand: temperature, spatial softmax, ignored pixels."""
from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from segkit.config import get_cfg
from segkit.losses import build_seg_loss
from segkit.losses.distill import (DEFAULT_WEIGHTS, ChannelWiseDivergence, DistillCriterion, PixelKL,
                                   channel_wise_divergence, feature_connector, pixel_kl)

LN3 = math.log(3.0)
# KL((0.75, 0.25) || (0.5, 0.5)): the teacher's softmax of (ln 3, 0) against the student's of (0, 0).
K = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)


def _map(values) -> torch.Tensor:
    """[N,C,H,W] from nested lists in that order."""
    return torch.tensor(values, dtype=torch.float32)


def test_pixel_kl_is_kl_of_the_class_distributions_over_the_valid_pixels():
    # Two pixels; the second is ignored and would add a large KL.
    teacher = _map([[[[LN3, 9.0]], [[0.0, -9.0]]]])
    student = torch.zeros(1, 2, 1, 2)
    labels = torch.tensor([[[0, 255]]])
    assert PixelKL(1.0)(student, teacher, labels).item() == pytest.approx(K, rel=1e-5)
    # Without the mask the mean takes in the second pixel: teacher (9, -9) -> (q, 1 - q) against (0.5, 0.5).
    q = 1 / (1 + math.exp(-18))
    second = q * math.log(2 * q) + (1 - q) * math.log(2 * (1 - q))
    assert pixel_kl(student, teacher, 1.0).item() == pytest.approx((K + second) / 2, rel=1e-5)


def test_pixel_kl_softens_by_the_temperature_and_scales_by_its_square():
    # At T = 2 the teacher (2 ln 3, 0) softens to the T = 1 distribution (0.75, 0.25): T^2 * K.
    teacher = _map([[[[2 * LN3]], [[0.0]]]])
    student = torch.zeros(1, 2, 1, 1)
    assert PixelKL(2.0)(student, teacher, torch.zeros(1, 1, 1, dtype=torch.long)).item() == pytest.approx(4 * K, rel=1e-5)


def test_pixel_kl_of_an_all_ignored_batch_is_zero_with_a_gradient():
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = PixelKL(1.0)(student, torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), 255))
    loss.backward()
    assert loss.item() == 0.0 and student.grad is not None


def test_cwd_softmax_runs_over_positions_per_channel_not_over_classes():
    # Each channel of the teacher is (ln 3, 0) over the two positions, the student is flat: every channel
    # contributes K. Per pixel the teacher's classes are equal (ln 3, ln 3) and (0, 0): pixel KL is 0.
    teacher = _map([[[[LN3, 0.0]], [[LN3, 0.0]]]])
    student = torch.zeros(1, 2, 1, 2)
    assert channel_wise_divergence(student, teacher, 1.0).item() == pytest.approx(K, rel=1e-5)
    assert pixel_kl(student, teacher, 1.0).item() == pytest.approx(0.0, abs=1e-7)


def test_cwd_divides_by_channels_and_batch_and_scales_by_the_temperature_square():
    # One of 2 channels in each of 2 images carries K (at T = 2, from (2 ln 3, 0)); the others carry 0.
    teacher = torch.zeros(2, 2, 1, 2)
    teacher[:, 0, 0, 0] = 2 * LN3
    student = torch.zeros(2, 2, 1, 2)
    loss = ChannelWiseDivergence(2.0)(student, teacher, torch.zeros(2, 1, 2, dtype=torch.long))
    assert loss.item() == pytest.approx(4 * (2 * K) / (2 * 2), rel=1e-5)


def test_cwd_is_zero_when_the_student_matches_the_teacher_up_to_a_constant_per_channel():
    t = torch.randn(2, 3, 5, 6)
    shift = torch.randn(2, 3, 1, 1)  # a softmax over positions ignores a per-channel offset
    assert channel_wise_divergence(t + shift, t, 4.0).item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("loss_fn", [PixelKL(1.0), ChannelWiseDivergence(4.0)], ids=["kd", "cwd"])
def test_teacher_maps_of_another_size_are_resized_bilinearly(loss_fn):
    student = torch.randn(2, 3, 8, 10)
    small = torch.randn(2, 3, 4, 5)
    labels = torch.randint(0, 3, (2, 8, 10))
    up = F.interpolate(small, size=(8, 10), mode="bilinear", align_corners=False)
    assert loss_fn(student, small, labels).item() == pytest.approx(loss_fn(student, up, labels).item(), rel=1e-6)


@pytest.mark.parametrize("loss_fn", [PixelKL(2.0), ChannelWiseDivergence(4.0)], ids=["kd", "cwd"])
def test_only_the_student_gets_a_gradient_and_both_compute_in_float32(loss_fn):
    student = torch.randn(2, 3, 6, 6, requires_grad=True)
    teacher = torch.randn(2, 3, 6, 6, requires_grad=True)
    labels = torch.randint(0, 3, (2, 6, 6))
    plain = loss_fn(student, teacher, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss_fn(student, teacher, labels)
    assert mixed.dtype == torch.float32 and mixed.item() == pytest.approx(plain.item(), rel=1e-6)
    plain.backward()
    assert student.grad is not None and teacher.grad is None


def test_mismatched_channels_and_bad_temperatures_are_named():
    with pytest.raises(ValueError, match=r"channel-wise distillation: student \(1, 3, 4, 4\) and teacher \(1, 5, 4, 4\)"):
        channel_wise_divergence(torch.zeros(1, 3, 4, 4), torch.zeros(1, 5, 4, 4), 1.0)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        PixelKL(0.0)


def test_registry_builds_the_terms_with_the_config_temperatures():
    cfg = get_cfg()
    cfg.TEACHER.KD_TEMPERATURE, cfg.TEACHER.CWD_TEMPERATURE, cfg.TEACHER.FEATURE_TEMPERATURE = 1.5, 3.0, 2.0
    kd, cwd, feat = (build_seg_loss(n, cfg, None) for n in ("kd", "cwd", "cwd_feature"))
    assert (kd.temperature, kd.ignore_index) == (1.5, cfg.DATASET.IGNORE_INDEX)
    assert (cwd.temperature, cwd.inputs) == (3.0, ("logits", "teacher_logits"))
    assert (feat.temperature, feat.inputs) == (2.0, ("feature", "teacher_feature"))
    assert get_cfg().TEACHER.CWD_TEMPERATURE == 4.0 and DEFAULT_WEIGHTS["cwd"] == 3.0  # the paper's Cityscapes setting


def test_criterion_weights_the_terms_and_trains_the_feature_projection():
    terms = {"kd": (PixelKL(1.0), 2.0), "cwd_feature": (ChannelWiseDivergence(1.0, ("feature", "teacher_feature")), 0.5)}
    connector = feature_connector(4, 6)
    crit = DistillCriterion(terms, connector)
    logits, t_logits = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8)
    s_feat, t_feat = torch.randn(2, 4, 4, 4, requires_grad=True), torch.randn(2, 6, 4, 4)
    labels = torch.randint(0, 3, (2, 8, 8))
    total, parts = crit((logits, {}), t_logits, labels, s_feat, t_feat)
    assert sorted(parts) == ["loss_cwd_feature", "loss_kd"]
    assert total.item() == pytest.approx(2.0 * parts["loss_kd"].item() + 0.5 * parts["loss_cwd_feature"].item(), rel=1e-6)
    total.backward()
    assert all(p.grad is not None for p in connector.parameters()) and s_feat.grad is not None
    assert isinstance(feature_connector(6, 6), torch.nn.Identity)
    with pytest.raises(ValueError, match="no feature pair was captured"):
        crit(logits, t_logits, labels)
