import itertools

import pytest

from segkit.data.samplers import InferenceSampler, TrainingSampler


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_training_sampler_is_seeded_shuffled_and_infinite():
    a, b = take(TrainingSampler(10, seed=3), 35), take(TrainingSampler(10, seed=3), 35)
    assert a == b
    assert a[:10] != list(range(10)) and sorted(a[:10]) == list(range(10))
    assert sorted(a[10:20]) == list(range(10)) and a[10:20] != a[:10]  # a new permutation each epoch
    assert take(TrainingSampler(10, seed=4), 10) != a[:10]
    assert take(TrainingSampler(10, shuffle=False), 12) == list(range(10)) + [0, 1]


@pytest.mark.parametrize("world", [2, 3, 4])
def test_training_shards_do_not_overlap(world):
    size = 12
    full = take(TrainingSampler(size, seed=7), size * 3)
    shards = [take(TrainingSampler(size, seed=7, rank=r, world_size=world), size * 3 // world) for r in range(world)]
    for r, shard in enumerate(shards):
        assert shard == full[r::world][: len(shard)]
    # Within the first epoch of the shared stream the ranks together see each index exactly once.
    first = [i for r in range(world) for i in shards[r][: size // world]]
    assert sorted(first) == list(range(size))


def test_inference_sampler_covers_every_index_once():
    for world in (1, 2, 3, 5):
        shards = [list(InferenceSampler(11, r, world)) for r in range(world)]
        assert sorted(i for s in shards for i in s) == list(range(11))
        assert [len(InferenceSampler(11, r, world)) for r in range(world)] == [len(s) for s in shards]


def test_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        TrainingSampler(4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="size"):
        TrainingSampler(0)
    with pytest.raises(ValueError, match="rank"):
        InferenceSampler(4, rank=3, world_size=2)


def test_start_continues_the_stream():
    # `start` is a position in the shared stream (iterations done x global batch).
    for world in (1, 2):
        rank = 1 % world
        full = take(TrainingSampler(7, seed=2, rank=rank, world_size=world), 30)
        resumed = take(TrainingSampler(7, seed=2, rank=rank, world_size=world, start=8 * world), 22)
        assert resumed == full[8:]
