"""tools/strip_checkpoint.py: weights and config kept, training-only state dropped, errors in one line."""
from __future__ import annotations

import os

import torch
from torch import nn

from segkit.config import get_cfg
from segkit.utils.checkpoint import load_checkpoint, load_weights, save_checkpoint
from tools.strip_checkpoint import main


def _training_checkpoint(path, with_ema=False):
    torch.manual_seed(0)
    model = nn.Conv2d(3, 64, 7)
    optimizer = torch.optim.AdamW(model.parameters())  # two moments per weight: the bulk of a checkpoint
    model(torch.randn(1, 3, 9, 9)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)
    extra = {"ema": {"module": {k: v + 1 for k, v in model.state_dict().items()}, "num_updates": 1}} if with_ema else {}
    # The keys a training checkpoint of segkit.engine holds (TrainerBase.checkpoint_state).
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(), "iteration": 7,
             "config": get_cfg().dump(), "kind": "segmentor", "model_name": "toy", "ema": None, "frozen": {}, **extra}
    save_checkpoint(str(path), state)
    return model, state


def test_strip_keeps_weights_and_config_and_drops_training_state(tmp_path, capsys):
    model, state = _training_checkpoint(tmp_path / "model_final.pth")
    out = tmp_path / "share" / "toy.pth"
    assert main([str(tmp_path / "model_final.pth"), str(out)]) == 0
    assert f"wrote {out}: " in capsys.readouterr().out
    stripped = load_checkpoint(str(out))
    assert set(stripped) == {"model", "iteration", "config", "kind", "model_name"}
    assert stripped["config"] == state["config"] and stripped["iteration"] == 7
    assert os.path.getsize(out) < 0.5 * os.path.getsize(tmp_path / "model_final.pth")
    fresh = nn.Conv2d(3, 64, 7)
    load_weights(fresh, str(out))
    torch.testing.assert_close(fresh.weight, model.weight)


def test_ema_weights_become_the_model(tmp_path):
    model, state = _training_checkpoint(tmp_path / "c.pth", with_ema=True)
    assert main([str(tmp_path / "c.pth"), str(tmp_path / "ema.pth"), "--ema"]) == 0
    torch.testing.assert_close(load_checkpoint(str(tmp_path / "ema.pth"))["model"]["weight"], model.weight + 1)


def test_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    _training_checkpoint(tmp_path / "c.pth")
    torch.save({"weight": torch.zeros(1)}, tmp_path / "bare.pth")
    assert main([str(tmp_path / "bare.pth"), str(tmp_path / "o.pth")]) == 1
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'bare.pth'} holds no training state to strip: "
                                               "it is a bare state_dict already")
    before = (tmp_path / "c.pth").read_bytes()
    assert main([str(tmp_path / "c.pth"), str(tmp_path / "c.pth")]) == 1
    assert capsys.readouterr().err == (f"error: OUT {tmp_path / 'c.pth'} is the same file as IN: writing it would "
                                       "overwrite the input; give OUT another path\n")
    os.link(tmp_path / "c.pth", tmp_path / "hard.pth")  # another name of the same file, which abspath misses
    assert main([str(tmp_path / "c.pth"), str(tmp_path / "hard.pth")]) == 1
    assert "is the same file as IN" in capsys.readouterr().err
    assert (tmp_path / "c.pth").read_bytes() == before
    assert main([str(tmp_path / "c.pth"), str(tmp_path / "o.pth"), "--ema"]) == 1
    assert "has no EMA weights" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()
