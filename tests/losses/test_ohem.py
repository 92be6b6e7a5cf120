import math

import pytest
import torch
from torch.nn import functional as F

from segkit.losses import OhemCrossEntropy
from segkit.losses import ohem as segkit_ohem


def reference_ohem(logits, target, thresh=0.7, ratio=1 / 16, ignore=255, weight=None):
    """The rule written out with a full sort, independent of the implementation."""
    c = logits.shape[1]
    lg = logits.float().permute(0, 2, 3, 1).reshape(-1, c)
    t = target.reshape(-1)
    valid = t != ignore
    lg, t = lg[valid], t[valid]
    prob = lg.softmax(1).gather(1, t[:, None])[:, 0]
    nll = -lg.log_softmax(1).gather(1, t[:, None])[:, 0]
    w = torch.ones_like(nll) if weight is None else torch.as_tensor(weight)[t]
    n_min = int(ratio * t.numel())
    hard = prob < thresh
    if hard.sum() >= n_min:
        keep = hard
    else:
        keep = torch.zeros_like(hard)
        keep[torch.argsort(nll, descending=True)[:n_min]] = True
    return (nll[keep] * w[keep]).sum() / w[keep].sum(), keep.sum().item()


def make_batch(n=2, c=5, h=12, w=10, scale=3.0, easy_boost=0.0):
    target = torch.randint(0, c, (n, h, w))
    target[:, :2] = 255  # some ignored rows
    logits = torch.randn(n, c, h, w) * scale
    if easy_boost:
        logits = logits + easy_boost * F.one_hot(target.clamp(max=c - 1), c).permute(0, 3, 1, 2)
    return logits, target


def test_many_hard_pixels_keeps_exactly_the_hard_ones():
    logits, target = make_batch(scale=1.0)
    ref, kept = reference_ohem(logits, target)
    assert kept > int((target != 255).sum() / 16)  # the threshold branch
    out = OhemCrossEntropy()(logits, target)
    assert torch.allclose(out, ref, atol=1e-6)


def test_few_hard_pixels_keeps_the_n_min_hardest():
    logits, target = make_batch(easy_boost=12.0)
    n_valid = int((target != 255).sum())
    probs = logits.softmax(1).gather(1, target.clamp(max=4)[:, None])[:, 0][target != 255]
    assert 0 < int((probs < 0.7).sum()) < n_valid // 16  # the n_min branch is exercised
    ref, kept = reference_ohem(logits, target)
    assert kept == n_valid // 16
    assert torch.allclose(OhemCrossEntropy()(logits, target), ref, atol=1e-6)


def test_no_hard_pixel_at_all_uses_n_min():
    logits, target = make_batch(easy_boost=40.0)
    ref, kept = reference_ohem(logits, target)
    assert kept == int((target != 255).sum()) // 16
    assert torch.allclose(OhemCrossEntropy()(logits, target), ref, rtol=1e-4)


def test_class_weights_weight_the_mean_not_the_selection():
    logits, target = make_batch(scale=1.5)
    weight = [0.5, 1.0, 2.0, 3.0, 0.1]
    ref, _ = reference_ohem(logits, target, weight=weight)
    assert torch.allclose(OhemCrossEntropy(weight=weight)(logits, target), ref, atol=1e-6)


def test_gradient_only_on_kept_pixels():
    logits, target = make_batch(easy_boost=12.0)
    logits.requires_grad_(True)
    OhemCrossEntropy()(logits, target).backward()
    touched = logits.grad.abs().sum(1) > 0
    _, kept = reference_ohem(logits.detach(), target)
    assert int(touched.sum()) == kept
    assert not touched[target == 255].any()


def test_all_ignored_returns_zero_with_gradient():
    logits = torch.randn(2, 4, 6, 6, requires_grad=True)
    target = torch.full((2, 6, 6), 255)
    loss = OhemCrossEntropy()(logits, target)
    assert loss.item() == 0.0 and not math.isnan(loss.item())
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_cpu(dtype):
    conv = torch.nn.Conv2d(3, 5, 1)
    x = torch.randn(2, 3, 12, 10)
    _, target = make_batch()
    with torch.autocast("cpu", dtype=dtype):
        logits = conv(x)
        assert logits.dtype == dtype
        loss = OhemCrossEntropy()(logits, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    ref, _ = reference_ohem(logits.detach().float(), target)
    assert torch.allclose(loss, ref, atol=1e-5)
    loss.backward()
    assert torch.isfinite(conv.weight.grad).all()


def test_errors_name_the_problem():
    logits = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="does not match logits"):
        OhemCrossEntropy()(logits, torch.zeros(1, 4, 4, dtype=torch.long))
    bad = torch.zeros(1, 8, 8, dtype=torch.long)
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"\[7\]"):
        OhemCrossEntropy()(logits, bad)
    with pytest.raises(ValueError, match="thresh"):
        OhemCrossEntropy(thresh=0.0)


def test_absolute_min_kept_floors_the_kept_pixels():
    logits, target = make_batch(easy_boost=40.0)  # nothing is hard
    n_valid = int((target != 255).sum())
    ratio_only = OhemCrossEntropy(min_kept_ratio=0.0, min_kept=0)(logits, target)
    assert ratio_only.item() == 0.0
    # min_kept = 10 keeps the 10 hardest pixels: the ratio rule with ratio 10 / n_valid.
    ref, kept = reference_ohem(logits, target, ratio=10.5 / n_valid)
    assert kept == 10
    assert torch.allclose(OhemCrossEntropy(min_kept_ratio=0.0, min_kept=10)(logits, target), ref, atol=1e-6)
    # More than the valid pixels: all of them, as the published recipes do when few pixels are valid.
    everything = OhemCrossEntropy(min_kept_ratio=0.0, min_kept=10**6)(logits, target)
    all_ref, _ = reference_ohem(logits, target, thresh=1.0, ratio=1.0)
    assert torch.allclose(everything, all_ref, atol=1e-6)
    with pytest.raises(ValueError, match="min_kept must be >= 0"):
        OhemCrossEntropy(min_kept=-1)


def test_ties_at_the_cut_keep_exactly_n_min():
    # Every pixel equally confident (identical float32 losses), none hard: the old cut on the n_min-th
    # value kept all of them. Exactly n_min (1/16 of the valid pixels) must be averaged.
    logits = torch.zeros(1, 3, 16, 16)
    logits[:, 0] = 20.0  # p(class 0) ~ 1: not hard at 0.7, loss ~ 4e-9 everywhere
    target = torch.zeros(1, 16, 16, dtype=torch.long)
    target[0, 0, :4] = 255
    loss_fn = OhemCrossEntropy(0.7, 1 / 16)
    kept = []
    orig = segkit_ohem.weighted_mean

    def spy(nll, pw, keep):
        kept.append(int(keep.sum()))
        return orig(nll, pw, keep)

    segkit_ohem.weighted_mean = spy
    try:
        loss_fn(logits, target)
    finally:
        segkit_ohem.weighted_mean = orig
    assert kept == [(16 * 16 - 4) // 16]
