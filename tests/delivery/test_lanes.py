"""Each entry's shard (ShardMap.entry_shards, over the map's bounds)
against shard_of_entry (one key at a time, its own bisect); and
batching.Lanes on entry indices against a model of per-shard queues of
entries (the lanes as they were): the same requests, each shard's entries in
order across put-backs (throttles) and back-offs (failures)."""
import random
from array import array
from collections import deque

from fluentbit_kinesis.delivery.batching import UNKNOWN, Lanes, entry_size
from fluentbit_kinesis.delivery.shards import ShardMap
from fluentbit_kinesis.pipeline.entry_kernels import shard_indices
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.pipeline.keys import RandomKey
from fluentbit_kinesis.telemetry.log import Logger

SPACE = 2 ** 128


def shard_map(shards, gap=False):
    """A map of `shards` even ranges (`gap`: the second one missing); 0:
    ListShards fails (no map: "unknown")."""
    span = SPACE // max(1, shards)

    def list_shards():
        if not shards:
            raise OSError("no stream")
        return [{"ShardId": f"shardId-{i:012d}", "HashKeyRange": {
            "StartingHashKey": str(i * span), "EndingHashKey": str(SPACE - 1 if i == shards - 1 else (i + 1) * span - 1)}}
            for i in range(shards) if not (gap and i == 1)]
    return ShardMap(list_shards, Logger(lambda level, text: None, "t", 0))


def random_entries(rng, count):
    pool = [RandomKey(f"{rng.getrandbits(64):016x}") for _ in range(50)] + \
        ["pod-a", "pod-é", "", "k" * 256, "\U0001F600", "a\x00b", RandomKey("pod-a")]
    entries = []
    for index in range(count):
        explicit = str(rng.randrange(SPACE)) if rng.random() < 0.1 else None
        if explicit and rng.random() < 0.05:
            explicit = rng.choice(["", "12a", str(SPACE), "-1"])  # no hash key: no shard
        entries.append((rng.randbytes(rng.randrange(0, 400)), rng.choice(pool), explicit, index))
    return entries


def test_entry_shards_are_the_reference():
    rng = random.Random(18)
    for shards in (0, 1, 2, 7, 256, 1024):
        for round_ in range(4):
            entries = random_entries(rng, rng.randrange(1, 3000))
            if round_ % 2:  # plain records only
                entries = [(data, key, None, index) for data, key, _, index in entries]
            table = EntryTable.from_entries(entries)
            the_map = shard_map(shards, gap=round_ == 3)
            for _ in range(2):  # the map's bounds made once, then reused
                found = the_map.entry_shards(table)
                if not shards:
                    assert found is None
                    continue
                indices, ids = found
                assert list(indices) == list(shard_indices(table, the_map._state[2]))
                assert ids == [s.shard_id for s in the_map.shards()]
                assert [ids[j] if j >= 0 else UNKNOWN for j in indices] == list(map(the_map.shard_of_entry, entries))


class Planner:
    """A limiter that lets random parts of random lanes go, and checks the
    sizes it is shown against the model's (and the LaneColumns, when given,
    against the lanes)."""
    with_columns = 0

    def __init__(self, rng, model):
        self.rng, self.model = rng, model

    def plan(self, ready, max_count, max_bytes, columns=None):
        plan = {}
        if columns is not None:  # the same lanes, as pacing's kernel reads them
            assert [columns.names[n] for n in columns.order] == [shard for shard, _ in ready]
            assert [list(columns.sizes[columns.bounds[2 * n]:columns.bounds[2 * n + 1]]) for n in columns.order] == [
                list(sizes) for _, sizes in ready]
            Planner.with_columns += 1
        for shard, sizes in ready:
            assert list(sizes) == [entry_size(e) for e in self.model[shard]]
            if self.rng.random() < 0.6:
                plan[shard] = self.rng.randrange(0, len(sizes) + 1)
        return {shard: n for shard, n in plan.items() if n}

    def waits(self, lanes, columns=None):
        return {shard: 0.0 for shard, _ in lanes}


def test_lanes_keep_each_shards_order_across_put_backs_and_back_offs():
    rng = random.Random(5)
    for shards in (0, 1, 3, 64):
        entries = random_entries(rng, rng.randrange(1, 2000))
        table = EntryTable.from_entries(entries)
        found = shard_map(shards).entry_shards(table)
        lanes = Lanes(table) if found is None else Lanes(table, *found)
        model = {}  # shard -> deque of entries: the lanes as they were, of tuples
        for i, entry in enumerate(entries):
            model.setdefault(lanes.shard_of(i), deque()).append(entry)
        assert list(lanes.lanes) == list(model) and lanes.shards == set(model)
        waiting, now, acked = [], 0.0, []
        while len(lanes):
            now += 1.0
            for until, back in [w for w in waiting if w[0] <= now][::-1]:  # the earliest failed first
                model_put_back(model, back, lanes)
            waiting = [w for w in waiting if w[0] > now]
            heads_only = not lanes.put_backs and all(until > now for until, _ in lanes.waiting)  # in chunk order then
            group, counts = lanes.take(Planner(rng, model), now, 500, 5 * 2 ** 20)
            expected = {shard: [model[shard].popleft() for _ in range(count)] for shard, (count, _, _) in counts.items()}
            by_shard = {}  # each shard's part in its order, whatever the request's
            for i in group:
                by_shard.setdefault(lanes.shard_of(i), []).append(table.entry(i))
            assert by_shard == expected
            assert not heads_only or list(group) == sorted(group)
            assert {s: c[1] for s, c in counts.items()} == \
                {s: sum(entry_size(entries[i]) for i in group if lanes.shard_of(i) == s) for s in counts}
            model = {shard: queue for shard, queue in model.items() if queue}
            busy = now % 10 < 6  # rounds without throttles or failures: the lanes' columns go to pacing
            throttled = [i for i in group if rng.random() < (0.2 if busy else 0.0)]
            failed = [i for i in group if i not in throttled and rng.random() < (0.1 if busy else 0.0)]
            acked += [i for i in group if i not in throttled and i not in failed]
            lanes.put_back(throttled)
            model_put_back(model, throttled, lanes)
            if failed:
                lanes.back_off(failed, now + rng.choice((0.5, 2.0, 3.0)))
                waiting.append((now + rng.choice((0.5, 2.0, 3.0)), failed))
                waiting[-1] = (lanes.waiting[-1][0], failed)
            assert lanes.pending_shards() == set(model) | {lanes.shard_of(i) for _, back in waiting for i in back}
        assert sorted(acked) == list(range(len(entries)))
    assert Planner.with_columns > 10


def model_put_back(model, back, lanes):
    by_shard = {}
    for i in back:
        by_shard.setdefault(lanes.shard_of(i), []).append(lanes.table.entry(i))
    for shard, entries in by_shard.items():
        model.setdefault(shard, deque()).extendleft(reversed(entries))
