"""Chunks delivered side by side, each shard's records in the chunks' order
(issue 17: a hot shard does not hold back the others).

Through the ABI on the engine thread (the hand-off, the default): chunks with
records for one hot shard, paced at a few hundred records/s, and for three
cold ones. The cold shards' records of every chunk reach the stream while the
hot shard is still working through its first chunks, and every partition
key's records are in the stream in the order they were flushed."""
import hashlib
import json
import time

from fluentbit_kinesis.delivery.shard_order import ALL, ShardOrder
from tests.support.harness import base_options, make_chunk
from tests.support.limited_kinesis import ShardLimits

FLB_OK = 1
MIB = 1024 * 1024
ENGINE = {"FLB_HOST_ENGINE_THREAD": "1"}


def test_a_shard_waits_only_for_earlier_chunks_that_still_send_there():
    order = ShardOrder()
    first, second, third = order.reserve(), order.reserve(), order.reserve()
    assert order.blocked(first) == set()
    assert order.blocked(second) is ALL  # the first has not said where it sends yet
    order.declare(first, {"a", "b"})
    assert order.blocked(second) == {"a", "b"}
    order.declare(second, {"c"})
    assert order.blocked(third) == {"a", "b", "c"}
    order.declare(first, {"b"})  # done with "a"
    assert order.blocked(second) == {"b"} and order.blocked(third) == {"b", "c"}
    assert not order.idle_shards()  # the third has not said where it sends
    order.declare(third, {"b"})
    assert order.idle_shards()  # "a" and "c" were seen, and nobody sends there now
    order.declare(second, {"a", "c"})
    assert not order.idle_shards()
    order.leave(first)
    order.leave(second)
    assert order.blocked(third) == set()


def keys_by_shard(kinesis, stream):
    ranges = [(s["ShardId"], int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for s in kinesis.client.list_shards(StreamName=stream)["Shards"]]
    by_shard = {sid: [] for sid, _, _ in ranges}
    for i in range(2000):
        point = int.from_bytes(hashlib.md5(f"pod-{i}".encode()).digest(), "big")
        by_shard[next(s for s, low, high in ranges if low <= point <= high)].append(f"pod-{i}")
    return ranges, by_shard


def test_cold_shards_of_later_chunks_go_while_the_hot_shard_works_and_keys_stay_in_order(kinesis, host):
    stream = kinesis.create_stream(shards=4)
    ranges, by_shard = keys_by_shard(kinesis, stream)
    hot = ranges[0][0]
    kinesis.front.faults.shard_ranges = ranges
    kinesis.front.faults.shard_limits = ShardLimits(records={hot: 250}, bytes_={hot: MIB})
    chunks, n = [], 0
    for c in range(6):  # each chunk: 300 hot records (1.2 s of the hot shard) and 90 cold ones
        chunk = []
        for i in range(390):
            shard = hot if i % 13 < 10 else ranges[1 + i % 3][0]
            chunk.append({"log": f"{'hot' if shard == hot else 'cold'} {n}", "n": n, "pod": by_shard[shard][i % 7]})
            n += 1
        chunks.append(chunk)
    h = host(env=ENGINE)
    assert h.init(**base_options(kinesis, stream, partition_key="pod")) == FLB_OK
    for chunk in chunks:
        assert h.flush(make_chunk(chunk)) == FLB_OK  # kept in the spool, delivered in the background
    records = [r for chunk in chunks for r in chunk]
    cold = {r["n"] for r in records if r["log"].startswith("cold")}
    hot_total = len(records) - len(cold)
    hot_seen_when_cold_done = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = [json.loads(d) for d in kinesis.read_all(stream).data]
        numbers = {r["n"] for r in stored}
        if hot_seen_when_cold_done is None and cold <= numbers:
            hot_seen_when_cold_done = len(numbers - cold)
        if len(stored) >= len(records):
            break
        time.sleep(0.2)
    assert sorted(r["n"] for r in stored) == list(range(len(records)))  # all, once
    # one chunk after the other, the last chunk's cold records would wait for
    # five chunks of hot ones (5/6 of them); side by side they do not
    assert hot_seen_when_cold_done is not None and hot_seen_when_cold_done <= hot_total // 2, \
        f"cold shards done only when {hot_seen_when_cold_done} of {hot_total} hot records were stored"
    by_key = {}
    for record in stored:  # read_all: each shard in its stored order
        by_key.setdefault(record["pod"], []).append(record["n"])
    assert all(ns == sorted(ns) for ns in by_key.values()), "a partition key's records out of order"
    assert h.exit() == FLB_OK
