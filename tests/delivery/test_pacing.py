"""Pacing at the stream's limit (issue 17): every shard paced at 1,000 records/s
and 1 MiB/s from the first call, our part learned from throttles, a hot shard
holding back only itself, one limiter per stream in the process.

The limiter is tested on a clock of its own (exact, no waiting); delivery
against tests/support/limited_kinesis.py, which enforces the limits as the
service does. Throughput figures are a benchmark, not tests:
`python -m tests.bench.throughput` (BENCHMARKS.md)."""
import hashlib
import json
import random
import threading
import time
from array import array
from collections import deque

import pytest

from fluentbit_kinesis import config
from fluentbit_kinesis.delivery import limiters, pacing
from fluentbit_kinesis.delivery.batching import Lanes, entry_size
from fluentbit_kinesis.delivery.client import KinesisClient
from fluentbit_kinesis.delivery.pacing import ShardLimiter
from fluentbit_kinesis.delivery.sender import Delivery
from fluentbit_kinesis.delivery.shards import ShardMap
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.telemetry.log import Logger
from tests.support.harness import FAKE_CREDENTIALS, REGION, base_options, make_chunk, numbered_records
from tests.support.limited_kinesis import LimitedKinesisServer, ShardLimits, even_ranges

FLB_OK = 1
MIB = 1024 * 1024


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def lane(count, size=100, key="k"):
    return [(b"x" * (size - len(key)), key, None, i) for i in range(count)]


def take(limiter, shard, entries, max_count, max_bytes):
    """How many of `entries` (a shard's lane) one request takes now; their tokens are taken."""
    return limiter.plan([(shard, deque(map(entry_size, entries)))], max_count, max_bytes).get(shard, 0)


def wait(limiter, shard, entries):
    return limiter.waits([(shard, deque(map(entry_size, entries)))])[shard]


# ---- the limiter, on its own clock ------------------------------------------------

def test_a_shard_is_paced_at_its_limit_from_the_first_call_with_one_second_of_burst():
    clock = Clock()
    limiter = ShardLimiter(clock=clock)
    entries = lane(5000)
    # 0.98 of 1,000 records/s, a bucket of 0.8 s: the service's holds one second,
    # and the difference absorbs requests that reach it later than others
    assert take(limiter, "s1", entries, 5000, 10 * MIB) == 784
    clock.now += 0.5
    assert take(limiter, "s1", entries, 5000, 10 * MIB) == 490
    clock.now += 10  # idle: the bucket holds under a second, not ten
    assert take(limiter, "s1", entries, 5000, 10 * MIB) == 784


def test_bytes_are_paced_too_and_an_aggregate_counts_as_one_record():
    clock = Clock()
    limiter = ShardLimiter(clock=clock)
    aggregates = lane(50, size=100_000, key="a")
    assert take(limiter, "s1", aggregates, 500, 10 * MIB) == 8  # 0.8 s of 0.98 MiB/s in 100 kB entries
    clock.now += 0.2
    assert take(limiter, "s1", aggregates, 500, 10 * MIB) == 2
    left = 0.98 * MIB * 1.0 - 1_000_000  # bytes in the bucket now
    assert wait(limiter, "s1", aggregates) == pytest.approx((100_000 - left) / (0.98 * MIB), abs=0.001)


def test_a_record_larger_than_a_shrunk_bucket_goes_once_the_bucket_is_full():
    clock = Clock()
    limiter = ShardLimiter(clock=clock)
    limiter.answered({"s1": (1, 100, 999)})  # a cut to half
    big = lane(3, size=900_000)
    clock.now += 5  # the bucket (half a MiB at most) fills
    assert take(limiter, "s1", big, 500, 10 * MIB) == 1


def test_a_throttle_cuts_to_the_part_accepted_once_per_cooldown_and_a_stray_one_changes_nothing():
    clock = Clock()
    limiter = ShardLimiter(clock=clock)
    limiter.answered({"s1": (99, 9900, 1)})  # 1% throttled: a stray one
    assert limiter.shares()["s1"] == pytest.approx(0.98)
    clock.now += 0.1
    limiter.answered({"s1": (300, 30_000, 300)})  # another producer takes about half
    cut = limiter.shares()["s1"]
    assert cut == pytest.approx(0.98 * 0.56, rel=0.01)  # what it accepted of late (fading over a second)
    clock.now += 0.5
    limiter.answered({"s1": (100, 10_000, 100)})  # answers to what was sent before the cut
    assert limiter.shares()["s1"] == pytest.approx(cut, rel=0.05)
    clock.now += 1.0
    wait(limiter, "s1", lane(1))  # it grew meanwhile
    before = limiter.shares()["s1"]
    assert before > cut
    limiter.answered({"s1": (200, 20_000, 20)})  # still over: at least a fifth less
    assert limiter.shares()["s1"] == pytest.approx(before * 0.8)


def test_the_share_grows_back_when_throttles_stop():
    clock = Clock()
    limiter = ShardLimiter(clock=clock)
    limiter.answered({"s1": (500, 50_000, 500)})
    assert limiter.shares()["s1"] == pytest.approx(0.49)
    seen = []
    for _ in range(40):
        clock.now += 0.5
        take(limiter, "s1", lane(1), 1, MIB)  # time passes as flushes use it
        seen.append(limiter.shares()["s1"])
    assert seen == sorted(seen)  # no oscillation without throttles
    assert seen[3] < 0.6  # slowly near the cut
    assert seen[29] > 0.95  # back near the limit within 15 s


def test_a_shard_without_a_prediction_is_paced_after_its_first_throttle_at_what_it_took():
    clock = Clock()
    limiter = ShardLimiter(clock=clock)
    entries = lane(10_000)
    assert take(limiter, pacing.UNKNOWN, entries, 10_000, 10 * MIB) == 10_000
    limiter.answered({pacing.UNKNOWN: (3000, 300_000, 7000)})
    clock.now += 0.5
    assert 1500 <= take(limiter, pacing.UNKNOWN, entries, 10_000, 10 * MIB) < 1600  # 3,000/s, and growing


def test_two_producers_share_a_stream_fairly_and_use_it():
    """Two processes' limiters on a 4-shard stream, simulated on one clock with
    the front's own buckets: both use it, in about equal parts, with few throttles."""
    figures = simulate_producers(2, shards=4, entries=96_000, seed=3)
    assert figures["goodput"] > 0.9, figures
    assert min(figures["middle"]) > 0.4, figures
    assert figures["throttled"] < 0.1, figures


def test_a_shard_at_its_limit_gets_full_requests_not_a_tenth_of_a_second_each():
    """A backlog on a one-shard stream goes at the shard's rate in requests of
    about half a second of it (~490 entries), not ten small ones a second: each
    request costs the same CPU however few entries it carries."""
    figures = simulate_producers(1, shards=1, entries=8000, seed=5)
    assert figures["goodput"] > 0.9, figures
    assert figures["throttled"] == 0, figures
    assert figures["per_request"] > 400, figures


def simulate_producers(count, shards, entries, seed, rtt=0.005, step=0.002, chunk=8000):
    clock = Clock()
    start = clock.now
    server = ShardLimits(1000, MIB, 1.0, clock=clock)
    rng = random.Random(seed)
    random.seed(seed)  # the jitter of pauses (batching.Lanes)
    ids = [f"shardId-{i}" for i in range(shards)]
    producers = [{"limiter": ShardLimiter(clock=clock), "left": entries, "lanes": None, "next": start + 0.3 * i,
                  "done": None, "stored": {}, "throttled": 0, "sent": 0, "requests": 0} for i in range(count)]
    while any(p["done"] is None for p in producers):
        for p in producers:
            if p["done"] is not None or p["next"] > clock.now:
                continue
            if p["lanes"] is None or not len(p["lanes"]):
                if not p["left"]:
                    p["done"] = clock.now
                    continue
                n, p["left"] = min(chunk, p["left"]), p["left"] - min(chunk, p["left"])
                at = array("i", [rng.randrange(shards) for _ in range(n)])
                p["lanes"] = Lanes(EntryTable.from_entries([(b"x" * 240, ids[j], None, i) for i, j in enumerate(at)]),
                                   at, ids)
            _simulated_request(p, server, clock, rtt)
        clock.now += step
    end = max(p["done"] for p in producers) - start
    middle = range(int(0.2 * end), int(0.8 * end))
    return {"goodput": (count * entries / shards / 1000 - 1) / end,
            "middle": [sum(p["stored"].get(s, 0) for s in middle) / (shards * 1000 * len(middle))
                       for p in producers],
            "throttled": sum(p["throttled"] for p in producers) / (count * entries),
            "per_request": sum(p["sent"] for p in producers) / max(1, sum(p["requests"] for p in producers))}


def _simulated_request(p, server, clock, rtt):
    lanes, limiter = p["lanes"], p["limiter"]
    group, _ = lanes.take(limiter, clock.now, 500, MIB)
    if not group:
        p["next"] = clock.now + lanes.pause(limiter, clock.now)[0]
        return
    stored, throttled, counts = [], [], {}
    p["sent"] += len(group)
    p["requests"] += 1
    for entry in group:
        shard = lanes.shard_of(entry)
        count = counts.setdefault(shard, [0, 0, 0])
        if server.admit(shard, 241, clock.now + rtt / 2):
            stored.append(entry)
            count[0] += 1
            count[1] += 241
        else:
            throttled.append(entry)
            count[2] += 1
    second = int(clock.now - 1000.0)
    p["stored"][second] = p["stored"].get(second, 0) + len(stored)
    p["throttled"] += len(throttled)
    now, clock.now = clock.now, clock.now + rtt  # the answer comes back
    limiter.answered(counts)
    clock.now = now
    lanes.put_back(throttled)
    p["next"] = now + rtt


def test_one_line_a_minute_while_a_shard_is_at_its_limit():
    clock = Clock()
    limiter = ShardLimiter("logs", clock=clock)
    assert limiter.report() is None
    entries = lane(3000)
    take(limiter, "shardId-1", entries, 3000, 10 * MIB)
    limiter.answered({"shardId-1": (980, 98_000, 20)})
    clock.now += 9
    assert limiter.report() is None  # the first after 10 s
    clock.now += 1
    line = limiter.report()
    assert line.startswith("stream logs at its write limit: 1 of 1 shards held entries back or were throttled "
                           "in the last 10 s (shardId-1)")
    assert "20 entries throttled" in line and "sent 98 records/s" in line and "MB/s" in line
    take(limiter, "shardId-1", entries, 3000, 10 * MIB)
    clock.now += 59
    assert limiter.report() is None  # then one a minute
    clock.now += 1
    assert "in the last 60 s" in limiter.report()
    clock.now += 61
    assert limiter.report() is None  # nothing at its limit since


# ---- one limiter per stream in the process ------------------------------------------

def settings_for(url, stream, **extra):
    options = {"region": REGION, "stream": stream, "endpoint": url, "backoff_increment": "20ms", **extra}
    return config.load(lambda name: {k: str(v) for k, v in options.items()}.get(name), environ={})


def test_workers_and_instances_writing_a_stream_share_one_limiter():
    first = limiters.for_stream(settings_for("http://127.0.0.1:1", "one"))
    assert limiters.for_stream(settings_for("http://127.0.0.1:1", "one", partition_key="k")) is first
    assert limiters.for_stream(settings_for("http://127.0.0.1:1", "two")) is not first
    assert limiters.for_stream(settings_for("http://127.0.0.1:1", "one", role_arn="arn:aws:iam::1:role/r")) \
        is not first
    assert isinstance(limiters.for_stream(settings_for("http://127.0.0.1:1", "one", dry_run="true")),
                      limiters.NoLimits)


# ---- delivery against the enforcing front --------------------------------------------

@pytest.fixture
def limited(monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = LimitedKinesisServer().start()
    yield server
    server.stop()


def delivery_for(server, stream, **extra):
    settings = settings_for(server.url, stream, **extra)
    logger = Logger(lambda level, text: None, "t", 5)
    client = KinesisClient(settings)
    return Delivery(client, settings, logger, shard_map=ShardMap(client.list_shards, logger))


def keys_by_shard(shards, count=400):
    ranges = even_ranges(shards)
    found = {shard: [] for shard, _, _ in ranges}
    for i in range(20 * count):
        key = f"k{i}"
        point = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
        found[next(s for s, low, high in ranges if low <= point <= high)].append(key)
    return found


def test_a_backlog_is_paced_at_the_limit_without_throttles(limited):
    stream = limited.front.create_stream("paced", 1)
    delivery = delivery_for(limited, stream)
    entries = [(b'{"n":%d}' % i + b" " * 200, f"k{i}", None, i) for i in range(3000)]
    acked = []
    started = time.monotonic()
    outcome = delivery.send(entries, lambda done, answers: acked.extend(done))
    assert outcome.delivered and sorted(acked) == list(range(3000))
    assert time.monotonic() - started > 2.1  # 784 at once, then 980 a second: held back, not thrown
    totals = limited.front.totals()["shardId-000000000000"]
    assert totals[0] == 3000 and totals[2] == 0, totals
    assert outcome.paced["shardId-000000000000"] > 1.0
    assert outcome.throttled == {} and outcome.attempts == 0


def test_a_hot_shard_holds_back_only_itself_and_its_throttles_are_paced_not_retried(limited):
    """Another producer takes 80% of one shard (the front allows us 200 records/s
    there): its entries are throttled, learned from and paced, never a failed
    try (max_retries 0) nor a backoff (30 s); the other shards' entries are
    all in long before."""
    stream = limited.front.create_stream("hot", 4)
    keys = keys_by_shard(4)
    hot = "shardId-000000000000"
    limited.front.limits = ShardLimits(records={s: (200 if s == hot else 1000) for s in keys}, bytes_=MIB)
    entries = [(b'{"n":%d}' % i, keys[hot][i % 400], None, i) for i in range(800)]
    entries += [(b'{"n":%d}' % (800 + i), keys[f"shardId-00000000000{1 + i % 3}"][i % 400], None, 800 + i)
                for i in range(1200)]
    random.Random(1).shuffle(entries)
    done_at = {}
    delivery = delivery_for(limited, stream, max_retries=0, backoff_increment="30s")
    started = time.monotonic()
    outcome = delivery.send(entries, lambda done, _: done_at.update((e, time.monotonic()) for e in done))
    took = time.monotonic() - started
    assert outcome.delivered and len(done_at) == 2000 and took < 20
    assert outcome.attempts == 0 and outcome.throttled[hot] > 0
    assert set(outcome.throttled) == {hot}
    cold_done = max(t for n, t in done_at.items() if n >= 800) - started
    assert cold_done < took / 2, (cold_done, took)
    assert delivery.limiter.shares()[hot] < 0.5 < min(v for k, v in delivery.limiter.shares().items() if k != hot)


def test_concurrent_flushes_take_from_the_same_buckets(limited):
    """Two flush threads (workers 2) on one shard: together at its limit, not twice it."""
    stream = limited.front.create_stream("workers", 1)
    results = []

    def flush(offset):
        delivery = delivery_for(limited, stream)
        entries = [(b'{"n":%d}' % (offset + i) + b" " * 100, f"k{offset + i}", None, i) for i in range(1500)]
        results.append(delivery.send(entries, lambda done, answers: None).delivered)
    threads = [threading.Thread(target=flush, args=(n * 10_000,)) for n in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True, True]
    assert time.monotonic() - started > 2.1  # 3,000 records: 784 at once, then 980 a second
    assert limited.front.totals()["shardId-000000000000"][2] == 0


def test_a_flush_at_the_limit_says_so(limited, monkeypatch):
    monkeypatch.setattr(pacing, "FIRST_REPORT", 1.0)
    stream = limited.front.create_stream("said", 1)
    lines = []
    settings = settings_for(limited.url, stream)
    client = KinesisClient(settings)
    delivery = Delivery(client, settings, Logger(lambda level, text: lines.append(text), "t", 3),
                        shard_map=ShardMap(client.list_shards, Logger(lambda *a: None, "t", 0)))
    # 2 KB entries: a request of 500 (1 MB) is always more than the bytes bucket (0.8 s of 1 MiB/s),
    # so the first request already holds entries back, whatever the jitter of the pauses
    entries = [(b"x" * 2000, f"k{i}", None, i) for i in range(1200)]
    assert delivery.send(entries, lambda done, answers: None).delivered
    said = [line for line in lines if "at its write limit" in line]
    assert len(said) == 1 and f"stream {stream} at its write limit: 1 of 1 shards" in said[0]


# ---- through the ABI, the instance's own shard map -------------------------------------

def test_plugin_paces_the_hot_shard_it_predicts_from_list_shards(kinesis, host):
    """moto behind the fault front, one shard limited to 300 records/s (another
    producer takes the rest): everything arrives, throttled entries are paced
    (one try: max_retries 0), the other shards are never throttled."""
    stream = kinesis.create_stream(shards=4)
    ranges = [(s["ShardId"], int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for s in kinesis.client.list_shards(StreamName=stream)["Shards"]]
    hot = ranges[0][0]
    kinesis.front.faults.shard_ranges = ranges
    kinesis.front.faults.shard_limits = ShardLimits(records={hot: 300}, bytes_={hot: MIB})
    by_shard = {sid: [] for sid, _, _ in ranges}
    for i in range(3000):
        point = int.from_bytes(hashlib.md5(f"pod-{i}".encode()).digest(), "big")
        by_shard[next(s for s, low, high in ranges if low <= point <= high)].append(f"pod-{i}")
    records = [{"log": f"hot-{i}", "pod": by_shard[hot][i % 50]} for i in range(1200)]
    records += [{"log": f"cold-{i}", "pod": by_shard[ranges[1 + i % 3][0]][i % 50]} for i in range(600)]
    h = host()
    assert h.init(**base_options(kinesis, stream, partition_key="pod", max_retries=0)) == FLB_OK
    assert h.flush(make_chunk(records)) == FLB_OK
    assert kinesis.front.counters.entries_failed > 0  # the hot shard pushed back
    logs = sorted(json.loads(d)["log"] for d in kinesis.read_all(stream).data)
    assert logs == sorted(r["log"] for r in records)
    assert h.flush(make_chunk(numbered_records(10, "after"))) == FLB_OK
