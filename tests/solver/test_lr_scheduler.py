import math

import pytest
import torch
from torch import nn

from segkit.config import get_cfg, get_cls_cfg
from segkit.solver import LRCurve, WarmupLRScheduler, build_lr_scheduler, build_optimizer


def test_linear_warmup_then_poly():
    c = LRCurve(max_iter=1000, schedule="poly", power=0.9, warmup_iters=100, warmup_factor=0.1)
    assert c(0) == pytest.approx(0.1)
    assert c(50) == pytest.approx(0.55)
    assert c(100) == pytest.approx(1.0)
    assert c(550) == pytest.approx(0.5**0.9)  # half-way through the 900 poly iterations
    assert c(1000) == 0.0 and c(1200) == 0.0


def test_exp_warmup_and_cosine_with_floor():
    c = LRCurve(max_iter=300, schedule="cosine", warmup_iters=100, warmup_factor=0.01, warmup_method="exp",
                min_lr_ratio=0.1)
    assert c(0) == pytest.approx(0.01)
    assert c(50) == pytest.approx(0.1)  # geometric mean of 0.01 and 1
    assert c(100) == pytest.approx(1.0)
    assert c(200) == pytest.approx(0.1 + 0.9 * 0.5)
    assert c(250) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.75)))
    assert c(300) == pytest.approx(0.1)


def test_scheduler_keeps_group_multipliers_and_resumes():
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR, cfg.SOLVER.MIN_LR_FACTOR = 0.1, 0.01

    def fresh():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
        m.head_modules = lambda: [m[1]]
        opt = build_optimizer(cfg, m)
        return m, opt, build_lr_scheduler(cfg, opt, max_iter=20, warmup_iters=5)

    m, opt, sched = fresh()
    curve = sched.curve
    lrs = []
    for it in range(12):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for it, row in enumerate(lrs):
        for g, lr in zip(opt.param_groups, row):
            assert lr == pytest.approx(0.1 * g["lr_mult"] * curve(it))
    assert curve(20) == pytest.approx(0.01)  # each group ends at MIN_LR_FACTOR of its own peak
    state = sched.state_dict()
    opt_state = opt.state_dict()
    torch.save(state, "/dev/null")
    _, opt2, sched2 = fresh()
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(state)
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([g["lr"] for g in opt.param_groups])
    opt.step(), sched.step(), opt2.step(), sched2.step()
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([g["lr"] for g in opt.param_groups])


def test_state_dict_loads_with_weights_only(tmp_path):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = WarmupLRScheduler(opt, LRCurve(max_iter=10, warmup_iters=2))
    torch.save(sched.state_dict(), tmp_path / "s.pth")
    assert torch.load(tmp_path / "s.pth", weights_only=True)["last_epoch"] == 0


def test_bad_schedule_names_the_keys():
    cfg = get_cfg()
    cfg.SOLVER.LR_SCHEDULER = "step"
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    with pytest.raises(ValueError, match="unknown LR schedule 'step'.*SOLVER"):
        build_lr_scheduler(cfg, opt, 10, 0)


def test_pretraining_schedule_is_the_shared_one_in_iterations():
    # Pretraining defaults: cosine from 1% warmup to 1e-5 of the peak, epochs turned into iterations by the caller.
    cfg = get_cls_cfg()
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.4)
    curve = build_lr_scheduler(cfg, opt, max_iter=100, warmup_iters=10).curve
    assert (curve.schedule, curve.warmup_factor, curve.min_lr_ratio) == ("cosine", 0.01, 1e-5)
    assert curve(0) == pytest.approx(0.01) and curve(10) == pytest.approx(1.0) and curve(100) == pytest.approx(1e-5)
