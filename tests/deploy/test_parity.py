"""The parity bar of segkit.deploy.parity: the fixed bar, and the float64 reference where logits are large."""
from __future__ import annotations

import pytest
import torch

from segkit.deploy.parity import MAX_ABS_DIFF, MIN_AGREEMENT, ParityResult, check_parity


def result(diff: float, agreement: float = 1.0, torch_error: float | None = None,
           onnx_error: float | None = None, scale: float = 0.0) -> ParityResult:
    return ParityResult(1, (8, 8), diff, agreement, 1.0, torch_error, onnx_error, scale)


def test_the_fixed_bar() -> None:
    assert result(MAX_ABS_DIFF).ok
    assert not result(MAX_ABS_DIFF, agreement=MIN_AGREEMENT - 1e-6).ok
    assert not result(2 * MAX_ABS_DIFF).ok  # over the bar and no float64 reference measured


@pytest.mark.parametrize("onnx_error, ok", [(1.1e-2, True), (1.3e-2, False)])
def test_large_logits_are_judged_against_float64(onnx_error: float, ok: bool) -> None:
    # PyTorch's own float32 result is 6e-3 from exact arithmetic: the file may be up to twice that.
    r = result(1.5e-2, torch_error=6e-3, onnx_error=onnx_error)
    assert r.ok is ok
    assert "against a float64 run" in r.describe()
    assert not result(1.5e-2, agreement=0.5, torch_error=6e-3, onnx_error=1e-3).ok  # agreement still binds


@pytest.mark.parametrize("scale, torch_error, bar", [
    (500.0, 1e-3, 1e-2),  # an untrained PIDNet: up to 10x PyTorch's 1e-3, within 1e-4 of 500
    (50.0, 1e-3, 5e-3),  # smaller logits: 1e-4 of them
    (5.0, 1e-3, 2e-3),  # twice PyTorch's error at least
    (40.0, 1e-5, 1e-4),  # PyTorch near exact: 10x its error, however large 1e-4 of the logits
])
def test_float32_rounding_grows_with_the_largest_logit(scale: float, torch_error: float, bar: float) -> None:
    r = result(2e-2, torch_error=torch_error, onnx_error=bar * 0.99, scale=scale)
    assert r.float64_bar == pytest.approx(bar) and r.ok
    assert not result(2e-2, torch_error=torch_error, onnx_error=bar * 1.01, scale=scale).ok
    assert f"bar <= {r.float64_bar:.2e}: twice PyTorch's, or up to 10x it within 1e-04 of the largest logit" in r.describe()


def test_description_states_each_bar_and_whether_it_is_met() -> None:
    good = result(2e-5).describe()
    assert good.startswith("input ") and "max |logit diff| 2.00e-05 (bar <= 1e-03: ok)" in good
    assert "argmax agreement 100.0000% (bar >= 99.99%: ok)" in good and "\n" not in good
    bad = result(2e-5, agreement=0.99).describe()
    assert "argmax agreement 99.0000% (bar >= 99.99%: FAILS)" in bad


class _Fixed(torch.nn.Module):
    """Logits whose two best classes are 1.5e-4 apart on every pixel (class 0 ahead of class 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 3, *x.shape[-2:])
        logits[:, 0], logits[:, 1] = 1.0 + 1.5e-4, 1.0
        return logits


def test_check_parity_counts_flipped_decisions_within_the_difference_bar() -> None:
    model = _Fixed()

    def shifted(x: torch.Tensor) -> torch.Tensor:  # every logit 1e-4 up: no decision changes
        return model(x) + 1e-4

    def flipped(x: torch.Tensor) -> torch.Tensor:  # 1e-4 from class 0 to class 1 on the left half: flips there
        out = model(x)
        out[:, 0, :, : x.shape[-1] // 2] -= 1e-4
        out[:, 1, :, : x.shape[-1] // 2] += 1e-4
        return out

    same = check_parity(model, "unused.onnx", [(4, 6), (5, 4)], runner=shifted)
    assert all(r.ok and r.agreement == 1.0 and r.decided == 1.0 for r in same)
    # 1e-4 is within the 1e-3 bar, and the 1.5e-4 margins exceed it, so every pixel counts: half disagree.
    moved = check_parity(model, "unused.onnx", [(4, 6)], runner=flipped)[0]
    assert moved.max_abs_diff == pytest.approx(1e-4, rel=1e-3) and moved.decided == 1.0
    assert moved.agreement == pytest.approx(0.5) and not moved.ok


def test_a_large_difference_does_not_excuse_its_own_disagreements() -> None:
    """Ties are pixels closer than the difference the bar tolerates; a wrong export's larger difference
    would otherwise excuse every pixel it flips (agreement 100% counted on 0% of the pixels)."""
    model = _Fixed()

    def wrong(x: torch.Tensor) -> torch.Tensor:  # class 1 far ahead on the left half
        out = model(x)
        out[:, 1, :, : x.shape[-1] // 2] += 2.0
        return out

    r = check_parity(model, "unused.onnx", [(4, 6)], runner=wrong)[0]
    assert r.max_abs_diff == pytest.approx(2.0) and r.onnx_error == pytest.approx(2.0) and r.torch_error == 0.0
    assert r.decided == 1.0 and r.agreement == pytest.approx(0.5) and not r.ok
