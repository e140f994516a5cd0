"""Pacing in C (csrc/fastjson_pace.c over a PaceTable) against the reference
(ShardPace objects, native=False): random sequences of plans, answers,
refunds, waits and reports, the clock stepping forward, not at all and
back, run on both limiters; after every step the results and every field
of every shard are the same, floats to the bit (repr: NaN and -0.0 too),
and the shards in the same order. The kernel's declines (lanes that are
not uint32 buffers, a shard twice, values out of range) run the reference
on the table's rows (PaceSlot), which must agree too."""
import random
from array import array
from collections import deque

import pytest

from fluentbit_kinesis.delivery import pace_lanes, pace_native, pacing
from fluentbit_kinesis.delivery.pacing import EXACT, ShardLimiter, ShardPace
from fluentbit_kinesis.delivery.lane_columns import RequestCounts
from fluentbit_kinesis.delivery.shard_pace import BURST

pytestmark = pytest.mark.skipif(not pace_native.AVAILABLE, reason="fluentbit_kinesis._fastjson not built")

MIB = 1024 * 1024
INTS = ("last_second", "minute")
SIZES = (0, 1, 5, 250, 300, 4000, 411_042, 822_084, 900_000, 1_048_576, 2 ** 32 - 1)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class Counted:
    """pace_native's and pace_lanes' calls, how many ran natively (not None)."""

    def __init__(self, monkeypatch):
        self.ran = {"plan": 0, "answered": 0, "waits": 0, "waits_columns": 0, "take_columns": 0,
                    "answered_columns": 0}
        for name, module, call in (("plan", pace_native, "plan"), ("answered", pace_native, "answered"),
                                   ("waits", pace_native, "waits"), ("waits_columns", pace_lanes, "waits"),
                                   ("take_columns", pace_lanes, "take"), ("answered_columns", pace_lanes, "answered")):
            monkeypatch.setattr(module, call, self._counted(name, getattr(module, call)))

    def _counted(self, name, call):
        def counted(*args):
            result = call(*args)
            self.ran[name] += result is not None
            return result
        return counted


def fields(limiter):
    """Every shard's every field; a time the clock gave as an int (the table holds doubles) as its float."""
    def value(pace, name):
        v = getattr(pace, name)
        if name == "second":
            return repr([float(v[0]), v[1], v[2]])
        return repr(list(v) if name == "minute" else float(v) if type(v) is int and name not in INTS else v)
    return [(shard, [value(pace, name) for name in ShardPace.__slots__]) for shard, pace in limiter.shards.items()]


def random_lanes(rng, pool):
    """(shard, sizes) of distinct shards: slices of one array('I') as Lanes makes them, a put-back lane's own array."""
    shards = rng.sample(pool, rng.randrange(0, min(len(pool), 12) + 1))
    common = rng.choice([SIZES[:5], SIZES, (250,), (0, 1), (900_000, 100)])
    sizes = array("I", (rng.choice(common) if rng.random() < 0.8 else rng.randrange(0, 2000)
                        for _ in range(rng.randrange(0, 700))))
    view, lanes, at = memoryview(sizes), [], 0
    for shard in shards:
        n = rng.choice([1, 1, 2, 5, 40, rng.randrange(1, 900)])
        lane = view[at:at + n] if at + n <= len(sizes) else array("I", [rng.choice(common) for _ in range(n)])
        at += n
        lanes.append((shard, lane if rng.random() < 0.9 else array("I", lane)))
    if lanes and rng.random() < 0.03:  # declined: the reference on the table's rows
        shard, lane = lanes[0]
        lanes[0] = (shard, rng.choice([deque(lane), list(lane), lanes[-1][1] if len(lanes) > 1 else list(lane)]))
        if rng.random() < 0.5:
            lanes.append(lanes[0])
    return lanes


def random_counts(rng, pool):
    counts = {}
    for shard in rng.sample(pool, rng.randrange(0, min(len(pool), 8) + 1)):
        acked = rng.choice([0, 1, 31, 500, rng.randrange(-3, 1000)])
        counts[shard] = [acked, acked * rng.choice([0, 1, 250, 2000]) + rng.randrange(-2, 3),
                         rng.choice([0, 0, 0, 1, 5, 500, rng.randrange(-2, 800)])]
    if counts and rng.random() < 0.02:  # declined: beyond 2**53
        counts[next(iter(counts))][1] = 2 ** 55
    return counts


def run(limiter, call, *args):
    """limiter.call(*args), or what it raised."""
    try:
        return getattr(limiter, call)(*args)
    except Exception as exc:  # noqa: BLE001 -- both must raise alike
        return f"raised {exc!r}"


def step(rng, clock, limiters, pool):
    """One random operation on every limiter; their results."""
    op = rng.random()
    if op < 0.45:
        lanes = random_lanes(rng, pool)
        max_count = rng.choice([500, 500, 1, 0, 32, rng.randrange(0, 2000)])
        max_bytes = rng.choice([5 * MIB, 5 * MIB, 0, 1, 300, rng.randrange(0, 10 * MIB)])
        return [run(limiter, "plan", lanes, max_count, max_bytes) for limiter in limiters]
    if op < 0.75:
        counts = random_counts(rng, pool)
        return [run(limiter, "answered", {k: list(v) for k, v in counts.items()}) for limiter in limiters]
    if op < 0.8:
        counts = {shard: (rng.randrange(0, 600), rng.randrange(0, 10 ** 6), 0)
                  for shard in rng.sample(pool, min(3, len(pool)))}
        return [run(limiter, "refund", counts) for limiter in limiters]
    if op < 0.85:
        lanes = [(shard, sizes) for shard, sizes in random_lanes(rng, pool) if len(sizes)]
        lanes = list(dict(lanes).items())
        return [repr(run(limiter, "waits", lanes)) for limiter in limiters]
    if op < 0.88:
        return [(repr(limiter.shares()), limiter.report()) for limiter in limiters]
    if op < 0.9 and limiters[0].shards:  # buckets far out: the EXACT guard, NaN
        shard = rng.choice(list(limiters[0].shards))
        name, value = rng.choice(["records", "bytes"]), rng.choice([EXACT, -EXACT, 1e17, float("nan"), -0.0, 0.5])
        for limiter in limiters:
            setattr(limiter.shards[shard], name, value)
        return None, None
    clock.now += rng.choice([0.0, 0.0, 0.001, 0.1, 0.5, 1.0, 2.5, 60.0, -0.5, -1e-9, rng.uniform(-1, 3)])
    return None, None


def test_the_kernel_is_the_reference_float_for_float(monkeypatch):
    rng = random.Random(18)
    counted = Counted(monkeypatch)
    for sequence in range(1500):
        monkeypatch.setattr(pacing, "MAX_SHARDS", rng.choice([4096, 4096, 3, 6]))  # emptied mid-request too
        clock = Clock(rng.choice([1000.0, 0.0, 123456.789, 7]))
        limiters = [ShardLimiter(clock=clock, native=False), ShardLimiter(clock=clock, native=True)]
        pool = [f"shardId-{i:012d}" for i in range(rng.choice([1, 4, 9, 16]))] + [pacing.UNKNOWN]
        for _ in range(rng.randrange(5, 40)):
            reference, native = step(rng, clock, limiters, pool)
            assert repr(reference) == repr(native)
            if type(reference) is dict:
                assert list(reference.items()) == list(native.items())  # the plan's order too
            assert fields(limiters[0]) == fields(limiters[1]), sequence
    assert counted.ran["plan"] > 10_000 and counted.ran["answered"] > 5_000 and counted.ran["waits"] > 1500, counted.ran


def pair(now=1000.0):
    clock = Clock(now)
    return clock, ShardLimiter(clock=clock, native=False), ShardLimiter(clock=clock, native=True)


def both(limiters, call, *args):
    results = [getattr(limiter, call)(*args) for limiter in limiters]
    assert repr(results[0]) == repr(results[1]) and fields(limiters[0]) == fields(limiters[1])
    return results[1]


def test_an_unknown_shard_takes_what_fits_until_its_first_throttle_then_what_it_took():
    clock, *limiters = pair()
    lane = array("I", [1000] * 9000)
    assert both(limiters, "plan", [(pacing.UNKNOWN, memoryview(lane))], 5000, 10 * MIB) == {pacing.UNKNOWN: 5000}
    both(limiters, "answered", {pacing.UNKNOWN: [3000, 3_000_000, 2000]})
    assert limiters[1].shards[pacing.UNKNOWN].limit_records == 3000.0
    clock.now += 0.5
    assert 1500 <= both(limiters, "plan", [(pacing.UNKNOWN, memoryview(lane))], 5000, 10 * MIB)[pacing.UNKNOWN] < 1600


def test_an_entry_larger_than_a_full_bucket_goes_once_it_is_full_and_buckets_beyond_exact_go_one_by_one():
    clock, *limiters = pair()
    both(limiters, "answered", {"s1": [1, 100, 999]})  # a cut to half: a bucket under one entry
    big = array("I", [900_000, 900_000, 10])
    assert both(limiters, "plan", [("s1", memoryview(big))], 500, 10 * MIB) == {}
    clock.now += 5
    assert both(limiters, "plan", [("s1", memoryview(big))], 500, 10 * MIB) == {"s1": 1}
    for limiter in limiters:
        limiter.shards["s1"].records = limiter.shards["s1"].bytes = EXACT  # never in practice
    assert both(limiters, "plan", [("s1", memoryview(big))], 500, 10 * MIB) == {"s1": 3}
    assert limiters[1].shards["s1"].minute[3] == limiters[0].shards["s1"].minute[3] >= 1


def test_the_table_is_emptied_at_max_shards_even_within_one_request(monkeypatch):
    monkeypatch.setattr(pacing, "MAX_SHARDS", 4)
    clock, *limiters = pair()
    counted = Counted(monkeypatch)
    lanes = [(f"s{i}", memoryview(array("I", [100] * 50))) for i in range(7)]
    both(limiters, "plan", lanes, 500, 5 * MIB)
    assert list(limiters[1].shards) == list(limiters[0].shards) and len(limiters[1].shards) <= 4
    both(limiters, "answered", {f"s{i}": [10, 1000, 1] for i in range(9)})
    both(limiters, "waits", lanes)
    assert counted.ran == {"plan": 1, "answered": 1, "waits": 1, "waits_columns": 0, "take_columns": 0,
                           "answered_columns": 0}


def test_a_declined_request_changes_nothing_and_the_reference_runs_on_the_rows(monkeypatch):
    clock, *limiters = pair()
    counted = Counted(monkeypatch)
    lane = array("I", [100] * 50)
    both(limiters, "plan", [("s1", memoryview(lane)), ("s1", memoryview(lane))], 500, 5 * MIB)  # a shard twice
    both(limiters, "plan", [("s1", deque(lane))], 500, 5 * MIB)
    both(limiters, "plan", [("s1", memoryview(lane).cast("B"))], 500, 5 * MIB)  # not uint32
    both(limiters, "plan", [("s1", lane)], 2 ** 64, 5 * MIB)
    both(limiters, "answered", {"s1": [2 ** 60, 0, 0]})
    both(limiters, "waits", [("s1", memoryview(lane)), ("s2", [100])])
    assert not any(counted.ran.values()), counted.ran
    assert limiters[1].shards["s1"].records < 0.98 * 1000 * BURST  # the reference took tokens on the row


def test_lanes_columns_plan_as_the_reference(monkeypatch):
    """Whole flushes through Lanes (their columns: one slot cache per flush,
    two flushes at once on one limiter), throttles put back, shards blocked."""
    rng = random.Random(7)
    counted = Counted(monkeypatch)
    for sequence in range(60):
        monkeypatch.setattr(pacing, "MAX_SHARDS", rng.choice([4096, 4096, 3, 40]))
        clock = Clock(1000.0)
        limiters = [ShardLimiter(clock=clock, native=False), ShardLimiter(clock=clock, native=True)]
        ids = [f"shardId-{i:012d}" for i in range(rng.choice([1, 4, 64]))]
        flushes = [new_flush(rng, ids) for _ in range(2)]
        while any(len(lanes) for pair in flushes for lanes in pair):
            pair = rng.choice([p for p in flushes if len(p[0])])
            blocked = frozenset(rng.sample(ids, 1)) if rng.random() < 0.1 else frozenset()
            taken = [lanes.take(limiter, clock.now, 500, 5 * MIB, blocked) for lanes, limiter in zip(pair, limiters)]
            assert repr(taken[0]) == repr(taken[1]), sequence
            waits = [limiter.waits(lanes._ready(blocked), None if blocked or lanes.fronts else lanes.columns)
                     for lanes, limiter in zip(pair, limiters)]
            assert repr(list(waits[0].items())) == repr(list(waits[1].items())), sequence
            group, counts = taken[0]
            throttled = [i for i in group if rng.random() < rng.choice([0.0, 0.0, 0.05, 0.5])]
            as_columns = rng.random() < 0.7  # as the sender answers (the kernel reads the lanes), or as a dict
            for lanes, limiter in zip(pair, limiters):
                answer = {shard: [c, b, 0] for shard, (c, b, _) in counts.items()}
                if as_columns:
                    answer = RequestCounts(lanes.columns, counts.lanes, array("I", counts.entries), array("Q", counts.sizes))
                for i in throttled:
                    if as_columns:
                        answer.less(lanes.shard_of(i), lanes.table.sizes[i], True)
                        continue
                    answer[lanes.shard_of(i)][0] -= 1
                    answer[lanes.shard_of(i)][1] -= lanes.table.sizes[i]
                    answer[lanes.shard_of(i)][2] += 1
                limiter.answered(answer)
                lanes.put_back(throttled)
            clock.now += rng.choice([0.0, 0.01, 0.1, 0.5])
            assert fields(limiters[0]) == fields(limiters[1]), sequence
    assert counted.ran["take_columns"] > 1000 and counted.ran["waits_columns"] > 1000, counted.ran
    assert counted.ran["answered_columns"] > 1000 and counted.ran["answered"] > 300, counted.ran


def new_flush(rng, ids):
    """The same flush for either limiter: two Lanes of one table."""
    from fluentbit_kinesis.delivery.batching import Lanes
    from fluentbit_kinesis.pipeline.entry_table import EntryTable
    count = rng.randrange(1, 3000)
    at = array("i", [rng.randrange(-1, len(ids)) if rng.random() < 0.02 else rng.randrange(len(ids))
                     for _ in range(count)])
    size = rng.choice([250, 2000, 100_000])
    table = EntryTable.from_entries([(b"x" * rng.randrange(1, size), "k", None, i) for i in range(count)])
    return Lanes(table, at, ids), Lanes(table, at, ids)
