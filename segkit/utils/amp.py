"""Mixed precision: one reading of SOLVER.AMP for training, evaluation and pretraining."""
from __future__ import annotations

import contextlib
import logging

import torch

logger = logging.getLogger("segkit")
_warned: set[tuple[str, str]] = set()

AMP_DTYPES: dict[str, torch.dtype] = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def amp_dtype(name: str, key: str = "SOLVER.AMP.DTYPE") -> torch.dtype:
    """The torch dtype of an AMP dtype name; an unknown name is an error naming `key`."""
    if name not in AMP_DTYPES:
        raise ValueError(f"{key} must be one of {sorted(AMP_DTYPES)}, got {name!r}")
    return AMP_DTYPES[name]


def autocast_dtype(enabled: bool, dtype_name: str, device: torch.device, key: str | None = None) -> torch.dtype | None:
    """The autocast dtype to use, or None for float32.

    AMP applies on CUDA only: CPU autocast is slower than float32 on most CPUs, so it would only make
    CPU runs differ from the GPU recipe without buying speed. The name is validated either way. With
    `key` (the config key that asked for AMP), asking for it off CUDA is said once per process, naming it.
    """
    dtype = amp_dtype(dtype_name)
    if enabled and device.type != "cuda" and key and (key, device.type) not in _warned:
        _warned.add((key, device.type))
        logger.warning("%s True is ignored on %s: AMP runs on CUDA only; running in float32", key, device.type)
    return dtype if enabled and device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast for `dtype`, or a no-op context when `dtype` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler that is active only for float16 (bfloat16 has float32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
