import math

import pytest
import torch
from torch import nn

from segkit.config import get_cfg, get_cls_cfg
from segkit.solver import OPTIMIZERS, RMSpropTF, build_optimizer, clip_gradients, peak_lr, scale_lr


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


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Linear(2, 2), nn.Linear(2, 2)

    def head_modules(self):
        return [self.head]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_registered_optimizer_builds_from_the_solver_keys(name):
    cfg = get_cfg()
    cfg.SOLVER.OPTIMIZER, cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY = name, 1e-3, 0.05
    model = Head()
    opt = build_optimizer(cfg, model)
    assert {(g["lr_mult"], g["lr"], g["weight_decay"]) for g in opt.param_groups} == {
        (1.0, 1e-3, 0.05), (1.0, 1e-3, 0.0), (10.0, 1e-2, 0.05), (10.0, 1e-2, 0.0)}
    before = model.head.weight.detach().clone()
    model.head(model.body(torch.ones(1, 2))).sum().backward()
    opt.step()  # every factory gives a working optimizer
    assert not torch.equal(before, model.head.weight)


def test_extra_modules_are_optimised_like_heads_once_each():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY = 1e-3, 0.05
    model, projection = Head(), nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3))
    opt = build_optimizer(cfg, model, extra_modules=[projection])
    group_of = {id(p): (g["lr_mult"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert len(group_of) == sum(p.numel() > 0 for p in [*model.parameters(), *projection.parameters()])
    conv, bn = projection
    assert group_of[id(conv.weight)] == (10.0, 0.05)
    assert group_of[id(bn.weight)] == group_of[id(bn.bias)] == (10.0, 0.0)
    assert group_of[id(model.body.weight)] == (1.0, 0.05)


def test_optimizer_hyperparameters_come_from_their_keys():
    cfg = get_cfg()
    cfg.SOLVER.OPTIMIZER, cfg.SOLVER.BETAS, cfg.SOLVER.EPS = "adamw", [0.8, 0.9], 1e-6
    opt = build_optimizer(cfg, nn.Linear(2, 2))
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.8, 0.9) and opt.defaults["eps"] == 1e-6
    cfg.SOLVER.OPTIMIZER, cfg.SOLVER.RMSPROP_ALPHA, cfg.SOLVER.RMSPROP_EPS = "rmsproptf", 0.95, 1e-4
    opt = build_optimizer(cfg, nn.Linear(2, 2))
    assert isinstance(opt, RMSpropTF) and (opt.defaults["alpha"], opt.defaults["eps"]) == (0.95, 1e-4)
    cfg.SOLVER.OPTIMIZER = "lamb"
    with pytest.raises(ValueError, match="unknown SOLVER.OPTIMIZER 'lamb'"):
        build_optimizer(cfg, nn.Linear(2, 2))


def test_peak_lr_scales_linearly_only_with_a_reference_batch():
    cfg = get_cls_cfg()  # pretraining: BASE_LR 0.1 per 256 images
    cfg.SOLVER.IMS_PER_BATCH = 1024
    assert peak_lr(cfg) == pytest.approx(0.4)
    assert build_optimizer(cfg, nn.Linear(2, 2)).param_groups[0]["lr"] == pytest.approx(0.4)
    cfg.SOLVER.LR_REFERENCE_BATCH = 0
    assert peak_lr(cfg) == 0.1
    seg = get_cfg()
    seg.SOLVER.IMS_PER_BATCH = 64
    assert peak_lr(seg) == seg.SOLVER.BASE_LR  # segmentation recipes give the LR as is


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
