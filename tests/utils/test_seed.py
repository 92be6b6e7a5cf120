"""segkit.utils.seed: one seed reproduces python, numpy and torch draws; an iteration's seed depends on nothing else."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from segkit.utils.seed import iteration_seed, seed_everything


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_the_same_seed_gives_the_same_draws_in_every_generator():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    assert all(a != b for a, b in zip(_draws(), first))


def test_a_seed_beyond_numpys_range_is_folded_into_it():
    seed_everything(2**32 + 5)  # numpy takes seeds below 2**32 only
    big = float(np.random.rand())
    np.random.seed(5)
    assert big == float(np.random.rand())


@pytest.fixture
def restore_determinism():
    enabled, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark


def test_deterministic_turns_on_deterministic_algorithms_as_warnings(restore_determinism):
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True
    seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.benchmark is False


def test_iteration_seed_is_a_function_of_seed_rank_and_iteration_only():
    seed = iteration_seed(7, 1, 100)
    np.random.seed(0)
    random.seed(99)  # the global generators' state does not enter it
    assert iteration_seed(7, 1, 100) == seed
    others = {iteration_seed(8, 1, 100), iteration_seed(7, 0, 100), iteration_seed(7, 1, 101)}
    assert seed not in others and len(others) == 3
    assert 0 <= seed < 2**32
