"""Seeding of every random number generator a run touches."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def iteration_seed(seed: int, rank: int, iteration: int) -> int:
    """The seed of one process at one training iteration: a function of (seed, rank, iteration) only, so a
    resumed or restarted run draws exactly what an uninterrupted one would, whatever happened before."""
    return int(np.random.SeedSequence([seed, rank, iteration]).generate_state(1)[0])
