import pytest
import torch
from torch.nn import functional as F

from segkit.losses import CrossEntropy


def test_segmentation_ce_matches_torch_with_weights_and_ignore():
    logits = torch.randn(2, 5, 6, 7)
    target = torch.randint(0, 5, (2, 6, 7))
    target[0, :3] = 255
    w = torch.tensor([1.0, 0.5, 2.0, 1.5, 0.2])
    ref = F.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert torch.allclose(CrossEntropy(w)(logits, target), ref, atol=1e-6)


def test_label_smoothing_matches_formula():
    eps, k = 0.1, 6
    logits = torch.randn(8, k)
    target = torch.randint(0, k, (8,))
    logp = logits.log_softmax(1)
    formula = ((1 - eps) * -logp.gather(1, target[:, None])[:, 0] + eps * -logp.mean(1)).mean()
    assert torch.allclose(CrossEntropy(ignore_index=-100, label_smoothing=eps)(logits, target), formula, atol=1e-6)


def test_all_ignored_is_zero_not_nan():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = CrossEntropy()(logits, torch.full((1, 4, 4), 255))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="outside"):
        CrossEntropy()(torch.randn(1, 3, 2, 2), torch.full((1, 2, 2), 3))
