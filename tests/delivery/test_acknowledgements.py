"""Acknowledgements hands a request's acknowledged events to the chunk's
progress: with aggregation, the events inside each aggregate and the single
events beside them, counted, and written to the ledger as the native bitmap
(never the Python reference's per-index pass), reading back the same events."""
import random

import pytest

from fluentbit_kinesis.delivery import ledger as ledger_module
from fluentbit_kinesis.delivery.acknowledgements import Acknowledgements
from fluentbit_kinesis.delivery.chunk_progress import ChunkProgress
from fluentbit_kinesis.delivery.ledger import Ledger
from fluentbit_kinesis.pipeline.entry_kernels_native import AVAILABLE
from fluentbit_kinesis.pipeline.kpl import AggregateEvents


def _aggregate(events, shard_id):
    carried = AggregateEvents(events)
    carried.shard_id = shard_id
    return carried


def _request(rng, events):
    """A request's entries' events: aggregates (with the shard each was meant
    for) and single events, in a random order, from the shuffled `events`."""
    entries = []
    while events:
        take = rng.choice([1, 1, rng.randrange(2, 200)])
        part, events = events[:take], events[take:]
        entries.append(part[0] if take == 1 else _aggregate(part, f"shardId-{rng.randrange(4):012d}"))
    return entries


@pytest.mark.skipif(not AVAILABLE, reason="the native module is not built")
def test_aggregates_go_to_the_ledger_natively_and_read_back(tmp_path, monkeypatch):
    def reference(indices):
        raise AssertionError("the ledger line went through the Python reference")

    monkeypatch.setattr(ledger_module, "_encode_reference", reference)
    rng = random.Random(18)
    for round_ in range(30):
        ledger = Ledger(tmp_path / str(round_))
        progress = ChunkProgress(ledger, "tag", b"chunk %d" % round_)
        acks = Acknowledgements(progress, packed=True)
        events = list(range(rng.randrange(1, 5000)))
        rng.shuffle(events)
        sent = events[:rng.randrange(1, len(events) + 1)]
        entries = _request(rng, list(sent))
        answers = [{"ShardId": "shardId-x" if type(entry) is int or rng.random() < 0.2 else entry.shard_id}
                   for entry in entries]
        with progress.sending():
            acks(entries, answers)
        aggregates = [entry for entry in entries if type(entry) is not int]
        assert acks.records == len(sent)
        assert acks.aggregates == len(aggregates)
        assert acks.aggregated == sum(map(len, aggregates))
        assert acks.misrouted == sum(answers[n]["ShardId"] != entry.shard_id
                                     for n, entry in enumerate(entries) if type(entry) is not int)
        assert set(progress.finished) == set(sent)
        assert Ledger(tmp_path / str(round_)).done(progress.key) == set(sent)  # the file, after a restart
