"""segkit.losses.binary: the shape check and the float32, autocast-free `compute` of every one-channel loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segkit.losses.binary import BinaryMapLoss


class RecordingLoss(BinaryMapLoss):
    """BCE against "label is class 1", recording what `compute` was handed."""

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.seen = (logits.dtype, torch.is_autocast_enabled("cpu"))
        return F.binary_cross_entropy_with_logits(logits[:, 0], (target == 1).float())


def test_compute_gets_float32_logits_with_autocast_off():
    loss = RecordingLoss()
    logits = torch.randn(2, 1, 4, 5)
    labels = torch.randint(0, 3, (2, 4, 5))
    expected = F.binary_cross_entropy_with_logits(logits[:, 0], (labels == 1).float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(logits.to(torch.bfloat16), labels)
    assert loss.seen == (torch.float32, False)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected, atol=2e-2, rtol=2e-2)  # only the bf16 rounding of the input
    torch.testing.assert_close(loss(logits, labels), expected)


@pytest.mark.parametrize("logits_shape,labels_shape", [((2, 2, 4, 5), (2, 4, 5)), ((2, 1, 4, 5), (2, 4, 6)),
                                                        ((1, 1, 4, 5), (2, 4, 5))])
def test_logits_that_are_not_one_channel_of_the_labels_size_are_refused(logits_shape, labels_shape):
    with pytest.raises(ValueError, match=r"RecordingLoss: one-channel logits \(.*\) do not match labels"):
        RecordingLoss()(torch.zeros(logits_shape), torch.zeros(labels_shape, dtype=torch.long))


def test_the_base_declares_its_input_and_needs_compute():
    assert RecordingLoss.inputs == ("binary",)
    with pytest.raises(TypeError):
        BinaryMapLoss()
