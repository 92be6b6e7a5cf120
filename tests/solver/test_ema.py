import pytest
import torch
from torch import nn

from segkit.solver import ModelEma


def test_ema_update_rule_with_warmup_and_buffers():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = ModelEma(model, decay=0.9, warmup=True)
    w0 = ema.module[0].weight.clone()
    rm0 = ema.module[1].running_mean.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()(torch.randn(8, 3))  # moves BN running stats and num_batches_tracked
    ema.update(model)
    d0 = min(0.9, 1 / 10)  # first update: (1 + 0) / (10 + 0)
    assert torch.allclose(ema.module[0].weight, d0 * w0 + (1 - d0) * model[0].weight)
    assert torch.allclose(ema.module[1].running_mean, d0 * rm0 + (1 - d0) * model[1].running_mean)
    assert ema.module[1].num_batches_tracked.item() == 1
    prev = ema.module[0].weight.clone()
    for n in range(1, 85):  # (1 + n) / (10 + n) reaches 0.9 at n = 80
        assert ema.current_decay() == pytest.approx(min(0.9, (1 + n) / (10 + n)))
        ema.update(model)
    assert ema.current_decay() == 0.9
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    assert not torch.allclose(prev, ema.module[0].weight)


def test_ema_state_dict_round_trip(tmp_path):
    model = nn.Linear(2, 2)
    ema = ModelEma(model, decay=0.5, warmup=False)
    with torch.no_grad():
        model.weight.mul_(3)
    ema.update(model)
    torch.save(ema.state_dict(), tmp_path / "ema.pth")
    other = ModelEma(nn.Linear(2, 2), decay=0.5, warmup=False)
    other.load_state_dict(torch.load(tmp_path / "ema.pth", weights_only=True))
    assert other.num_updates == 1
    assert torch.equal(other.module.weight, ema.module.weight)
