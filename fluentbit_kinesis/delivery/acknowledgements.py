"""Delivery's callback for what Kinesis acknowledged in one flush: the events
each entry carries go to the chunk's progress (and ledger); aggregates are
counted, and one that landed on another shard than predicted is noted (still
whole for a KCL consumer, pipeline/aggregation.py, but the shard map is
stale)."""
import threading
from array import array

from ..pipeline.kpl import AggregateEvents


class Acknowledgements:
    def __init__(self, progress, packed):
        self.progress = progress
        self.packed = packed  # entries may carry several events (aggregation)
        self.records = 0      # user records acknowledged
        self.aggregates = 0
        self.aggregated = 0   # user records inside those aggregates
        self.misrouted = 0    # aggregates answered from another shard than predicted

    def __call__(self, events, answers):
        """One request's acknowledged entries: their events (EntryTable.events
        of them) and the service's answers to them (None: not read, as for
        entries without explicit hash keys, so no KPL aggregate among them)."""
        if not self.packed:  # one record per entry
            acked = events
        else:
            acked = array("I")  # as events come unpacked: the ledger's bitmap is then native
            for n, carried in enumerate(events):
                if type(carried) is int:
                    acked.append(carried)
                    continue
                acked.extend(carried)
                if type(carried) is AggregateEvents:
                    self.aggregates += 1
                    self.aggregated += len(carried)
                    self.misrouted += answers is not None and answers[n].get("ShardId") != carried.shard_id
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
