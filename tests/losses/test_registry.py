"""Every loss in segkit.losses.LOSSES, built from the config and fed what its `inputs` declare."""
from __future__ import annotations

import pytest
import torch

from segkit.config import get_cfg
from segkit.losses import LOSSES, build_seg_loss
from segkit.losses.build import loss_inputs

CHANNELS = {"logits": 4, "binary": 1, "teacher_logits": 4, "feature": 6, "teacher_feature": 6}


def _preds(loss, h=12, w=14):
    return [torch.randn(2, CHANNELS[kind], h, w, requires_grad=True) for kind in loss_inputs(loss)]


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "class_weights"])
def test_registered_loss_is_a_finite_differentiable_scalar(name, weighted):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = 4
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0]) if weighted else None
    loss = build_seg_loss(name, cfg, weight)
    assert isinstance(loss, torch.nn.Module)
    assert loss_inputs(loss) and set(loss_inputs(loss)) <= set(CHANNELS)
    preds = _preds(loss)
    target = torch.randint(0, 4, (2, 12, 14))
    target[:, :3] = cfg.DATASET.IGNORE_INDEX
    out = loss(*preds, target)
    assert out.dim() == 0 and torch.isfinite(out) and out.item() >= 0
    out.backward()
    assert preds[0].grad is not None and torch.isfinite(preds[0].grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_registered_loss_survives_an_all_ignored_batch(name):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = 4
    loss = build_seg_loss(name, cfg, None)
    out = loss(*_preds(loss, 9, 11), torch.full((2, 9, 11), cfg.DATASET.IGNORE_INDEX))
    assert torch.isfinite(out)


def test_unknown_loss_names_the_key_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown LOSS\.AUX_NAME 'focal'.*'boundary_bce'"):
        build_seg_loss("focal", get_cfg(), None, "LOSS.AUX_NAME")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_registered_loss_computes_in_float32_under_autocast(name):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = 4
    loss = build_seg_loss(name, cfg, None)
    preds = [p.detach() for p in _preds(loss, 10, 12)]
    target = torch.randint(0, 4, (2, 10, 12))
    plain = loss(*preds, target)
    # The targets built from the labels (Sobel, Laplacian, thresholds) must not drop to half precision.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(*preds, target)
    assert mixed.dtype == torch.float32 and torch.allclose(mixed, plain, rtol=1e-5, atol=1e-6)
