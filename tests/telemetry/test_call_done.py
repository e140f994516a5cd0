"""InstanceMetrics.call_done from a request's Columns (the usual case: every
entry acknowledged) counts what it counts from the entries themselves."""
import random

from fluentbit_kinesis.pipeline import request_body
from fluentbit_kinesis.pipeline.aggregation import AggregateEvents
from fluentbit_kinesis.telemetry.metrics import InstanceMetrics

COUNTERS = ("put_records_calls", "kinesis_records_sent", "records_sent", "bytes_sent")


def counted(entries, with_columns):
    metrics = InstanceMetrics("kinesis.0", "s")
    cols = request_body.columns(entries)
    if with_columns and request_body.AVAILABLE:
        request_body.body(b'"StreamName":"s"', entries, cols)  # the body counts the totals when it can
    metrics.call_done(entries, ["shardId-1"], cols if with_columns else None)
    return [getattr(metrics, name) for name in COUNTERS] + [dict(metrics.throttled)]


def test_columns_count_as_the_entries():
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
        if round_ % 2:  # all plain, ASCII keys: the native body counts
            entries = [(data, "pod", None, i) for i, (data, *_rest) in enumerate(entries)]
        assert counted(entries, True) == counted(entries, False)
