import pytest
import torch

from segkit.losses import ClassificationLoss, DistillationLoss
from segkit.losses.distill import distillation_term


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
