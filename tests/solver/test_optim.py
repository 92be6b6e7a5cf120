import math

import pytest
import torch
from torch import nn

from segkit.solver import RMSpropTF, clip_gradients, create_optimizer, scale_lr


def test_rmsproptf_two_steps_by_hand():
    lr, alpha, eps, mom, wd = 0.1, 0.9, 1e-3, 0.9, 0.01
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RMSpropTF([p], lr=lr, alpha=alpha, eps=eps, momentum=mom, weight_decay=wd)
    x, ms, buf = [1.0, -2.0], [1.0, 1.0], [0.0, 0.0]  # TF1 initialises the mean square to 1
    for grads in ([0.5, 0.25], [-1.0, 0.3]):
        p.grad = torch.tensor(grads)
        opt.step()
        for i in range(2):
            g = grads[i] + wd * x[i]
            ms[i] = alpha * ms[i] + (1 - alpha) * g * g
            buf[i] = mom * buf[i] + lr * g / math.sqrt(ms[i] + eps)
            x[i] -= buf[i]
    assert p.tolist() == pytest.approx(x, rel=1e-6)


def test_rmsproptf_centered_without_momentum():
    p = nn.Parameter(torch.tensor([0.5]))
    opt = RMSpropTF([p], lr=0.01, alpha=0.9, eps=1e-3, momentum=0.0, centered=True, init_square_avg=0.0)
    p.grad = torch.tensor([2.0])
    opt.step()
    ms, mg = 0.1 * 4.0, 0.1 * 2.0
    assert p.item() == pytest.approx(0.5 - 0.01 * 2.0 / math.sqrt(ms - mg * mg + 1e-3), rel=1e-6)


def test_create_optimizer_by_name_and_lr_mult():
    params = [{"params": [nn.Parameter(torch.zeros(2))], "lr_mult": 10.0, "weight_decay": 0.0},
              {"params": [nn.Parameter(torch.zeros(2, 2))], "lr_mult": 1.0, "weight_decay": 0.05}]
    opt = create_optimizer("adamw", params, 1e-3, weight_decay=0.05)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-2, 1e-3])
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.05]
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        create_optimizer("lamb", [nn.Parameter(torch.zeros(1))], 0.1)


def test_scale_lr_and_clip():
    assert scale_lr(0.1, 1024) == pytest.approx(0.4)
    m = nn.Linear(3, 1)
    m.weight.grad = torch.full_like(m.weight, 10.0)
    m.bias.grad = torch.zeros_like(m.bias)
    norm = clip_gradients(m, 1.0)
    assert norm.item() == pytest.approx(math.sqrt(300))
    total = torch.cat([m.weight.grad.flatten(), m.bias.grad]).norm()
    assert total.item() == pytest.approx(1.0, rel=1e-4)
    assert clip_gradients(m, 0.0) is None
