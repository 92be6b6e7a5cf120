"""AMP runs on CUDA only; asking for it elsewhere is said once, naming the key."""
from __future__ import annotations

import pytest
import torch

from segkit.utils import amp


def test_amp_off_cuda_is_float32_and_said_once_naming_the_key(monkeypatch, segkit_log):
    monkeypatch.setattr(amp, "_warned", set())
    cpu = torch.device("cpu")
    assert amp.autocast_dtype(True, "bfloat16", cpu, key="TEST.AMP") is None
    assert amp.autocast_dtype(True, "bfloat16", cpu, key="TEST.AMP") is None
    assert amp.autocast_dtype(False, "float16", cpu, key="SOLVER.AMP.ENABLED") is None
    assert segkit_log.messages == ["TEST.AMP True is ignored on cpu: AMP runs on CUDA only; running in float32"]
    assert amp.autocast_dtype(True, "float16", torch.device("cuda")) is torch.float16


def test_unknown_dtype_names_the_key():
    with pytest.raises(ValueError, match=r"SOLVER.AMP.DTYPE must be one of \['bfloat16', 'float16'\], got 'half'"):
        amp.autocast_dtype(False, "half", torch.device("cpu"))
