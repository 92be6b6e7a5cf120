"""The parity bar of segkit.deploy.parity: the fixed bar, and the float64 reference where logits are large."""
from __future__ import annotations

import pytest

from segkit.deploy.parity import MAX_ABS_DIFF, MIN_AGREEMENT, ParityResult


def result(diff: float, agreement: float = 1.0, torch_error: float | None = None,
           onnx_error: float | None = None) -> ParityResult:
    return ParityResult(1, (8, 8), diff, agreement, 1.0, torch_error, onnx_error)


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


def test_description_states_each_bar_and_whether_it_is_met() -> None:
    good = result(2e-5).describe()
    assert good.startswith("input ") and "max |logit diff| 2.00e-05 (bar <= 1e-03: ok)" in good
    assert "argmax agreement 100.0000% (bar >= 99.99%: ok)" in good and "\n" not in good
    bad = result(2e-5, agreement=0.99).describe()
    assert "argmax agreement 99.0000% (bar >= 99.99%: FAILS)" in bad
