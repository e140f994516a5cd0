"""Delivery's callback for what Kinesis acknowledged in one flush: the events
each entry carries go to the chunk's progress (and ledger); aggregates are
counted, and one that landed on another shard than predicted is noted (still
whole for a KCL consumer, pipeline/aggregation.py, but the shard map is
stale)."""
import threading
from operator import itemgetter

from ..pipeline.aggregation import AggregateEvents

_events = itemgetter(3)


class Acknowledgements:
    takes_events = True  # Delivery may hand over the entries' events column (request_body.Columns)

    def __init__(self, progress, packed):
        self.progress = progress
        self.packed = packed  # entries may carry several events (aggregation)
        self.records = 0      # user records acknowledged
        self.aggregates = 0
        self.aggregated = 0   # user records inside those aggregates
        self.misrouted = 0    # aggregates answered from another shard than predicted

    def __call__(self, entries, answers, events=None):
        """`events`: the entries' events, when the caller has them as a column."""
        if not self.packed:  # one record per entry
            acked = list(map(_events, entries) if events is None else events)
        else:
            acked = []
            for entry, answer in zip(entries, answers):
                events = entry[3]
                if type(events) is int:
                    acked.append(events)
                    continue
                acked.extend(events)
                if type(events) is AggregateEvents:
                    self.aggregates += 1
                    self.aggregated += len(events)
                    self.misrouted += answer.get("ShardId") != events.shard_id
        self.records += len(acked)
        self.progress.acked(acked)


class SentTotals:
    """An instance's totals over all flushes, for its exit line."""

    def __init__(self):
        self.records = 0
        self.aggregates = 0
        self.aggregated = 0
        self._lock = threading.Lock()

    def add(self, acks):
        with self._lock:
            self.records += acks.records
            self.aggregates += acks.aggregates
            self.aggregated += acks.aggregated

    def records_per_aggregate(self):
        return self.aggregated / max(1, self.aggregates)
