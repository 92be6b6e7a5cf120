import random

import pytest
import torch

from segkit.pretrain.mix import Mixup, cutmix_box


def test_mixup_targets_sum_to_one_and_blend_images():
    mix = Mixup(10, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.1, rng=random.Random(1))
    lam, cutmix = mix.sample()
    x = torch.randn(4, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 3])
    mix.rng = random.Random(1)
    out, soft = mix(x, y)
    assert not cutmix and 0 < lam < 1
    assert torch.allclose(out, lam * x + (1 - lam) * x.flip(0), atol=1e-6)
    assert torch.allclose(soft.sum(1), torch.ones(4))
    off = 0.1 / 10
    assert soft[0, 0].item() == pytest.approx(lam * (1 - 0.1 + off) + (1 - lam) * off)
    assert soft[0, 3].item() == pytest.approx((1 - lam) * (1 - 0.1 + off) + lam * off)


@pytest.mark.parametrize("seed", range(5))
def test_cutmix_area_matches_lambda(seed):
    h, w = 20, 30
    mix = Mixup(5, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, rng=random.Random(seed))
    x = torch.stack([torch.zeros(3, h, w), torch.ones(3, h, w)])
    out, soft = mix(x, torch.tensor([0, 1]))
    kept = (out[0] == 0).float().mean().item()  # share of sample 0's own pixels
    assert soft[0, 0].item() == pytest.approx(kept, abs=1e-6)
    assert soft[0, 1].item() == pytest.approx(1 - kept, abs=1e-6)
    assert torch.allclose(soft.sum(1), torch.ones(2))


def test_cutmix_box_is_clipped_to_the_image():
    rng = random.Random(0)
    for lam in (0.0, 0.3, 0.9):
        for _ in range(20):
            y0, y1, x0, x1 = cutmix_box(lam, 16, 24, rng)
            assert 0 <= y0 <= y1 <= 16 and 0 <= x0 <= x1 <= 24


def test_disabled_mixup_only_smooths():
    mix = Mixup(4, prob=0.0, label_smoothing=0.2)
    x = torch.randn(2, 3, 4, 4)
    out, soft = mix(x, torch.tensor([1, 2]))
    assert out is x
    assert soft[0].tolist() == pytest.approx([0.05, 0.85, 0.05, 0.05])
