"""ShardPace.take by sums (where the buckets hold a whole part, and where
one runs short: running sums), against
take_one_by_one (the reference loop): the same count, the same tokens left,
the same held-back count, whatever the lane, limits and buckets; take_sum's
bytes are those entries' sizes."""
import copy
import random
from collections import deque

from fluentbit_kinesis.delivery.batching import fitting, fitting_sum
from fluentbit_kinesis.delivery.pacing import BURST, ShardPace


def random_pace(rng):
    pace = ShardPace(True, 0.0)
    pace.share = rng.choice([0.98, 0.5, 0.02, rng.random(), 0.0])
    full = pace.share * pace.limit_bytes * BURST
    pace.records = rng.choice([0.0, -3.0, 0.5, 1.0, 2.7, 31.0, 784.0, rng.uniform(-5, 900), 1e17, 2.0 ** 52 - 0.5])
    pace.bytes = rng.choice([0.0, -100.0, 250.0, 7000.5, 822083.584, rng.uniform(-1000, 900_000),
                             full, full + 0.1, full - 0.1, rng.uniform(0, 2 * full), 1e17, float("nan")])
    return pace


def test_take_is_the_loop():
    rng = random.Random(5)
    for _ in range(40_000):
        sizes = deque(rng.choice([0, 1, 250, 300, rng.randrange(0, 2000), 900_000, 411_042, 822_084])
                      for _ in range(rng.randrange(0, 60)))
        start = rng.randrange(0, len(sizes) + 2)
        max_count, max_bytes = rng.choice([0, 1, 2, 32, 500, rng.randrange(0, 80)]), rng.choice(
            [0, 1, 300, 20_480, 5 * 1024 * 1024, rng.randrange(0, 40_000), -1])
        fast = random_pace(rng)
        reference = copy.deepcopy(fast)
        got, got_bytes = fast.take_sum(sizes, start, max_count, max_bytes)
        assert got == reference.take_one_by_one(sizes, start, max_count, max_bytes)
        assert got_bytes == sum(list(sizes)[start:start + got])
        assert repr((fast.records, fast.bytes, fast.minute)) == repr((reference.records, reference.bytes,
                                                                      reference.minute))  # nan, -0.0 alike
        count, sent = fitting_sum(sizes, start, max_count, max_bytes)
        assert count == fitting(sizes, start, max_count, max_bytes) and sent == sum(list(sizes)[start:start + count])


def test_an_unpaced_shard_takes_what_fits():
    pace = ShardPace(False, 0.0)
    assert pace.take(deque([10, 20, 30]), 0, 5, 35) == 2 and pace.take(deque([100]), 0, 5, 1) == 1
