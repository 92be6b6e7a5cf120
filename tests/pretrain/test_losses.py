import math

import pytest
import torch

from segkit.losses import CrossEntropy
from segkit.pretrain.losses import (ClassificationLoss, DistillationLoss, SoftTargetCrossEntropy, distillation_term,
                                    smooth_one_hot)


def test_soft_targets_give_label_smoothed_cross_entropy():
    eps, k = 0.1, 6
    logits, target = torch.randn(8, k), torch.randint(0, k, (8,))
    smoothed = CrossEntropy(ignore_index=-100, label_smoothing=eps)(logits, target)  # tests/losses: the formula
    # (1 - eps + eps/K) on the true class, eps/K elsewhere
    soft = smooth_one_hot(target, k, eps)
    assert torch.allclose(soft.sum(1), torch.ones(8))
    assert math.isclose(soft[0, target[0]].item(), 1 - eps + eps / k, rel_tol=1e-6)
    assert torch.allclose(SoftTargetCrossEntropy()(logits, soft), smoothed, atol=1e-6)
    assert torch.allclose(ClassificationLoss(eps)(logits, soft), smoothed, atol=1e-6)
    assert torch.allclose(ClassificationLoss(eps)(logits, target), smoothed, atol=1e-6)


def test_smooth_one_hot_refuses_targets_out_of_range():
    with pytest.raises(ValueError, match="must lie in"):
        smooth_one_hot(torch.tensor([0, 9]), 5)
    with pytest.raises(ValueError, match=r"must be \[N\]"):
        smooth_one_hot(torch.zeros(2, 2, dtype=torch.long), 5)


def test_kl_and_ce_terms_match_their_definitions():
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    T = 2.0
    ps, pt = (s / T).softmax(1), (t / T).softmax(1)
    kl = (pt * (pt.log() - ps.log())).sum(1).mean() * T * T
    ce = -(pt * ps.log()).sum(1).mean() * T * T
    assert torch.allclose(distillation_term(s, t, T, "kl"), kl, atol=1e-5)
    assert torch.allclose(distillation_term(s, t, T, "ce"), ce, atol=1e-5)
    assert distillation_term(t, t, T, "kl").abs().item() < 1e-6


def test_mix_of_base_and_teacher_and_no_teacher_gradient():
    s = torch.randn(4, 3, requires_grad=True)
    t = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0])
    base = ClassificationLoss()
    loss = DistillationLoss(base, alpha=0.25, temperature=1.0)(s, y, t)
    expected = 0.75 * base(s, y) + 0.25 * distillation_term(s, t)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert t.grad is None and s.grad is not None
    with pytest.raises(ValueError, match="alpha"):
        DistillationLoss(base, alpha=1.5)
