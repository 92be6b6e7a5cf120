"""Samplers for iteration-based training and sharded evaluation."""
from __future__ import annotations

import itertools
import random
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class TrainingSampler(Sampler[int]):
    """Endless stream of shuffled indices; rank r takes positions r, r+world, ... of one shared stream.

    Every rank draws the same permutations from the shared seed, so the shards never overlap within an
    epoch and together cover the dataset once per epoch.
    """

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start: int = 0, with_seeds: bool = False) -> None:
        """`start`: position in the shared stream to begin at (iterations done x global batch), so a resumed
        run draws what the uninterrupted one would. `with_seeds`: yield (index, seed) pairs, the seed a
        function of (seed, position) only, for `SeededItems` to seed each item's augmentation with."""
        if size <= 0:
            raise ValueError(f"TrainingSampler needs a non-empty dataset, got size {size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        if start < 0:
            raise ValueError(f"TrainingSampler start must be >= 0, got {start}")
        self.size, self.shuffle, self.seed = size, shuffle, int(seed)
        self.rank, self.world_size = rank, world_size
        self.start, self.with_seeds = int(start), with_seeds

    def _infinite(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            if self.shuffle:
                yield from torch.randperm(self.size, generator=g).tolist()
            else:
                yield from range(self.size)

    def __iter__(self) -> Iterator:
        first = self.start + self.rank
        stream = itertools.islice(self._infinite(), first, None, self.world_size)
        if not self.with_seeds:
            return stream
        positions = itertools.count(first, self.world_size)
        return ((i, int(np.random.SeedSequence([self.seed, p]).generate_state(1)[0])) for p, i in zip(positions, stream))


class SeededItems(Dataset):
    """Takes (index, seed) keys: seeds python's, numpy's and torch's global RNGs, which the transforms draw from,
    then returns `dataset[index]`. Augmentation then depends on the stream position alone, not on
    which worker drew the item or what it drew before, so a resumed run repeats it exactly."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # torchvision's transforms draw from torch
        return self.dataset[index]


class InferenceSampler(Sampler[int]):
    """Indices rank, rank+world, ...: no padding, so every image is evaluated exactly once overall."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.indices = range(rank, size, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
