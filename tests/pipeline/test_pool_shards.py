"""Made-up keys' shards read off their pool (entry_kernels.pooled_shard_indices):
when every key of a fast-path table is the pool's next, each entry's shard
is the pool's shard for that key, found once per shard map; the same as
hashing every key (shard_indices_reference), across chunks that wrap the
pool, chunks larger than it, and shard maps with gaps."""
import random

import pytest

from fluentbit_kinesis.config import Settings
from fluentbit_kinesis.pipeline import entry_kernels, fastpath
from fluentbit_kinesis.pipeline.entry_kernels import ShardBounds, shard_indices, shard_indices_reference
from fluentbit_kinesis.pipeline.keys import RANDOM_KEY_POOL
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.support.harness import make_chunk

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")

SPACE = 2 ** 128


def bounds_of(shards, gap=False):
    span = SPACE // shards
    kept = [i for i in range(shards) if not (gap and i == 1)]
    return ShardBounds([i * span for i in kept], [SPACE - 1 if i == shards - 1 else (i + 1) * span - 1 for i in kept])


def records(count, rng, keyed=0.0):
    return [{"log": "x" * rng.randrange(0, 50), **({"pod": f"p{rng.randrange(9)}"} if rng.random() < keyed else {})}
            for _ in range(count)]


@pytest.mark.parametrize("shards,gap", [(1, False), (7, True), (256, False), (1000, False)])
def test_pooled_shards_are_every_key_hashed(shards, gap):
    rng = random.Random(shards)
    shaper = Shaper(Settings(region="us-east-1", stream="s"), tables=True)
    bounds = bounds_of(shards, gap)
    pooled = 0
    for count in [1, 5, 4095, 1, 3000, 9000, 4096, 17, 2 * RANDOM_KEY_POOL + 3]:  # starts all over the pool
        table = shaper.shape_chunk(make_chunk(records(count, rng))).entries
        assert table.pool is not None and table.count == count
        pooled += 1
        assert list(shard_indices(table, bounds)) == list(shard_indices_reference(table, bounds))
    assert pooled == 9 and len(bounds.pools) == 1  # the pool's shards found once


def test_keys_of_their_own_take_the_hashing_way():
    rng = random.Random(2)
    shaper = Shaper(Settings(region="us-east-1", stream="s", partition_key=["pod"]), tables=True)
    bounds = bounds_of(64)
    some = shaper.shape_chunk(make_chunk(records(2000, rng, keyed=0.5))).entries
    assert some.pool is None  # some keys the records': not the pool's in turn
    assert list(shard_indices(some, bounds)) == list(shard_indices_reference(some, bounds))
    none = shaper.shape_chunk(make_chunk(records(2000, rng, keyed=0.0))).entries
    assert none.pool is not None  # no record has one: all the pool's, in turn
    assert list(shard_indices(none, bounds)) == list(shard_indices_reference(none, bounds))


def test_a_fixed_key_is_a_pool_of_one():
    shaper = Shaper(Settings(region="us-east-1", stream="s", fixed_partition_key="same"), tables=True)
    table = shaper.shape_chunk(make_chunk(records(300, random.Random(3)))).entries
    bounds = bounds_of(16)
    found = shard_indices(table, bounds)
    assert list(found) == list(shard_indices_reference(table, bounds)) and len(set(found)) == 1


def test_many_pools_are_bounded():
    bounds = bounds_of(8)
    for seed in range(entry_kernels.MAX_POOLS + 3):
        shaper = Shaper(Settings(region="us-east-1", stream="s"), tables=True)
        table = shaper.shape_chunk(make_chunk(records(100, random.Random(seed)))).entries
        assert list(shard_indices(table, bounds)) == list(shard_indices_reference(table, bounds))
    assert len(bounds.pools) <= entry_kernels.MAX_POOLS
