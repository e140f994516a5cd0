"""Lanes group a flush's entries by predicted shard in C-level passes
(batching._grouped_by_shard); the one-by-one loop (_grouped_one_by_one) is
the reference: the same lanes in the same order, the same entries and sizes
in each, and the predictor asked about the same entries in the same order."""
import random

import pytest

from fluentbit_kinesis.delivery import batching


def predictor(shards, calls):
    def predict(entry):
        calls.append(entry)
        key = entry[2] if entry[2] is not None else entry[1]
        return f"shardId-{hash(key) % shards:04d}"
    return predict


def random_entries(rng, count, keys, hash_keys=False):
    pool = [rng.choice(["pod-", "pöd-", "p\\"]) + str(i) for i in range(keys)]
    return [(rng.randbytes(rng.randrange(0, 400)), rng.choice(pool),
             str(rng.randrange(2 ** 128)) if hash_keys and rng.random() < 0.5 else None, index)
            for index in range(count)]


def lanes_of(grouped):
    return [(shard, list(entries), list(sizes)) for shard, (entries, sizes) in grouped.items()]


@pytest.mark.parametrize("seed", range(30))
def test_grouped_by_shard_is_the_one_by_one_grouping(seed):
    rng = random.Random(seed)
    entries = random_entries(rng, rng.randrange(1, 3000), rng.choice([1, 5, 50, 4000]))
    shards = rng.choice([1, 4, 256])
    fast_calls, slow_calls = [], []
    fast = batching._grouped_by_shard(entries, predictor(shards, fast_calls))
    slow = batching._grouped_one_by_one(entries, predictor(shards, slow_calls))
    assert lanes_of(fast) == lanes_of(slow)
    assert fast_calls == slow_calls


def test_explicit_hash_keys_go_one_by_one():
    rng = random.Random(7)
    entries = random_entries(rng, 200, 20, hash_keys=True)
    assert batching._grouped_by_shard(entries, predictor(4, [])) is None
    lanes = batching.Lanes(entries, predictor(4, []))
    assert lanes_of(lanes.lanes) == lanes_of(batching._grouped_one_by_one(entries, predictor(4, [])))
    assert len(lanes) == 200 and batching._grouped_by_shard([], predictor(4, [])) is None
