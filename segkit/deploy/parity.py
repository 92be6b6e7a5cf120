"""Does an ONNX file compute what the PyTorch model computes? Logits and argmax compared on fixed inputs.

The bar: max |logit difference| <= 1e-3 and argmax agreement >= 99.99%.

Agreement is counted over the pixels that PyTorch decides by more than the difference the bar tolerates
(top-2 logit margin; the measured max difference where it is smaller): where its two best classes are
closer than that, either answer is PyTorch's at float precision. An untrained model (the tests' models) has
enough such near-ties along its many class borders to miss 99.99% on rounding alone; a trained one has few,
so the count then covers nearly every pixel. The share counted is reported with the figure. A wrong export
differs by more than the tolerance, so its disagreements are counted, not excused as ties.

Where the logits are so large that float32 rounding alone exceeds 1e-3 (an untrained PIDNet reaches
logits of 400 and PyTorch's own float32 result is then 6e-3 from exact arithmetic), no float32 runtime can
meet the first bar; there the file is judged against a float64 run of the model instead: it must be within
twice PyTorch's own float32 error of it, or, where that is still within 1e-4 of the largest logit, ten
times it: the float32 rounding a different order of the same sums (folded Conv+BN, another convolution
algorithm) reaches in the deep models, 2 to 10 times PyTorch's. A wrong export (a pooling sized for the
trace input, a branch taken for the wrong size) is off by orders of magnitude more and fails either way.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from .runtime import OnnxSegmentor

MAX_ABS_DIFF = 1e-3
MIN_AGREEMENT = 0.9999  # share of pixels whose argmax class agrees
REL_FLOAT32 = 1e-4  # over the fixed bar: float32 rounding tolerated, as a share of the largest exact logit
FLOAT32_SPREAD = 10  # ... but never more than this many times PyTorch's own float32 error


@dataclass(frozen=True)
class ParityResult:
    """The comparison at one input shape. `agreement`: over the `decided` share of pixels (PyTorch's top-2
    margin > the tolerated difference). `torch_error` / `onnx_error`: max |difference| of PyTorch's and the
    file's float32 logits from a float64 run, and `scale` the run's largest |logit|, measured only when
    `max_abs_diff` exceeds the bar."""

    batch: int
    size: tuple[int, int]
    max_abs_diff: float
    agreement: float
    decided: float = 1.0
    torch_error: float | None = None
    onnx_error: float | None = None
    scale: float = 0.0

    @property
    def float64_bar(self) -> float | None:
        """How far from the float64 run the file may be (None: not judged against it)."""
        if self.torch_error is None:
            return None
        return max(2 * self.torch_error, min(FLOAT32_SPREAD * self.torch_error, REL_FLOAT32 * self.scale))

    @property
    def ok(self) -> bool:
        if self.agreement < MIN_AGREEMENT:
            return False
        if self.max_abs_diff <= MAX_ABS_DIFF:
            return True
        return self.onnx_error is not None and self.onnx_error <= self.float64_bar

    def describe(self) -> str:
        """One line: each figure, the bar it must meet and whether it does."""
        def verdict(ok: bool) -> str:
            return "ok" if ok else "FAILS"

        diff_ok = self.max_abs_diff <= MAX_ABS_DIFF
        over = "over, so judged against float64 below" if self.onnx_error is not None else verdict(False)
        text = (f"input {self.batch}x3x{self.size[0]}x{self.size[1]}: max |logit diff| {self.max_abs_diff:.2e} "
                f"(bar <= {MAX_ABS_DIFF:.0e}: {'ok' if diff_ok else over}); "
                f"argmax agreement {100 * self.agreement:.4f}% "
                f"(bar >= {100 * MIN_AGREEMENT:.2f}%: {verdict(self.agreement >= MIN_AGREEMENT)}), counted on the "
                f"{100 * self.decided:.2f}% of pixels that are no near-tie "
                "(PyTorch's top-2 logit margin > the tolerated diff)")
        if self.onnx_error is not None:
            text += (f"; against a float64 run (largest |logit| {self.scale:.3g}): ONNX off by {self.onnx_error:.2e}, "
                     f"PyTorch float32 by {self.torch_error:.2e} (bar <= {self.float64_bar:.2e}: twice PyTorch's, or up to "
                     f"{FLOAT32_SPREAD}x it within {REL_FLOAT32:.0e} of the largest logit: "
                     f"{verdict(self.onnx_error <= self.float64_bar)})")
        return text


class ParityError(RuntimeError):
    """An exported file disagrees with its model; the message names the sizes and the differences."""


@torch.inference_mode()
def check_parity(
    model: nn.Module, onnx_path: str, sizes: Sequence[Sequence[int]], num_classes: int | None = None,
    seed: int = 0, runner: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[ParityResult]:
    """Compare the eval-mode `model` (on the CPU) with the ONNX file at each (height, width) of `sizes`.

    The first size runs a batch of 2 and the others a batch of 1, so the dynamic batch is checked too.
    Inputs are seeded standard normal, the scale of normalised images. runner: what runs the file
    (default: onnxruntime; an `OpenVinoSegmentor` checks OpenVINO's fp32 the same way).
    """
    runner = runner or OnnxSegmentor(onnx_path, num_classes=num_classes)
    generator = torch.Generator().manual_seed(seed)
    exact: nn.Module | None = None
    results = []
    for i, (h, w) in enumerate(sizes):
        batch = 2 if i == 0 else 1
        x = torch.randn(batch, 3, int(h), int(w), generator=generator)
        expected = model(x).float()
        got = runner(x)
        if got.shape != expected.shape:
            raise ParityError(f"{onnx_path} returned logits {tuple(got.shape)} where the model returns "
                              f"{tuple(expected.shape)} for input {tuple(x.shape)}")
        diff = float((got - expected).abs().max())
        result = ParityResult(batch, (int(h), int(w)), diff, 1.0)
        if diff > MAX_ABS_DIFF:
            if exact is None:
                exact = copy.deepcopy(model).double()
            reference = exact(x.double())
            result = dataclasses.replace(result, torch_error=float((expected.double() - reference).abs().max()),
                                         onnx_error=float((got.double() - reference).abs().max()),
                                         scale=float(reference.abs().max()))
        # Ties: the difference the bar tolerates, not more (a wrong export's large one would excuse it).
        tolerated = MAX_ABS_DIFF if result.float64_bar is None else result.float64_bar
        agreement, decided = _agreement(expected, got, min(diff, tolerated))
        results.append(dataclasses.replace(result, agreement=agreement, decided=decided))
    return results


def _agreement(expected: torch.Tensor, got: torch.Tensor, tie: float) -> tuple[float, float]:
    """(argmax agreement over the pixels whose top-2 margin in `expected` exceeds `tie`, their share)."""
    same = got.argmax(1) == expected.argmax(1)
    if expected.shape[1] < 2:
        return float(same.float().mean()), 1.0
    top2 = expected.topk(2, dim=1).values
    decided = (top2[:, 0] - top2[:, 1]) > tie
    if not decided.any():
        return 1.0, 0.0
    return float(same[decided].float().mean()), float(decided.float().mean())
