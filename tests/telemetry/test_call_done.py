"""InstanceMetrics.call_done from a flush's EntryTable and the indices
acknowledged (C-level sums over the columns) counts what the entries
themselves say: calls, Kinesis records, user records, data and key bytes."""
import random
from array import array

from fluentbit_kinesis.pipeline.aggregation import AggregateEvents
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.telemetry.metrics import InstanceMetrics

COUNTERS = ("put_records_calls", "kinesis_records_sent", "records_sent", "bytes_sent")


def test_counts_are_the_entries():
    rng = random.Random(7)
    for round_ in range(30):
        entries = []
        for index in range(rng.randrange(1, 300)):
            key = rng.choice(["pod-a", "pod-b", "é-pod", "k" * 256, ""])
            if rng.random() < 0.2:  # aggregates carry several events
                events = AggregateEvents(range(rng.randrange(1, 5)))
                events.shard_id = "shardId-1"
            else:
                events = index
            entries.append((rng.randbytes(rng.randrange(0, 500)), key, rng.choice([None, "12"]), events))
        if round_ % 2:  # all plain, ASCII keys
            entries = [(data, "pod", None, i) for i, (data, *_rest) in enumerate(entries)]
        acked = array("I", sorted(rng.sample(range(len(entries)), rng.randrange(0, len(entries) + 1))))
        metrics = InstanceMetrics("kinesis.0", "s")
        metrics.call_done(EntryTable.from_entries(entries), acked, ["shardId-1"])
        picked = [entries[i] for i in acked]
        expected = [1, len(picked), sum(1 if type(e[3]) is int else len(e[3]) for e in picked),
                    sum(len(e[0]) + len(e[1].encode()) for e in picked)]
        assert [getattr(metrics, name) for name in COUNTERS] == expected
        assert dict(metrics.throttled)["shardId-1"] == 1
