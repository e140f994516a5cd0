"""A request's parts per shard as columns of lane numbers (issue 18).

With many shards a request takes a few entries from each of hundreds of
lanes. Its plan (how many entries each lane gives) and its counts (what each
shard took, then what the service acknowledged) stay as arrays indexed like
the lane numbers of the flush's batching.LaneColumns, so pacing's kernel
(pace_native.py) reads them whole: no Python step per shard between the plan
and the answer. Both read as the dicts they stand for, for the reference
paths and for the rare answer with failures.
"""
from array import array
from collections.abc import Mapping


class _ByLane(Mapping):
    """shard -> value, over `columns` (a LaneColumns) and its lane numbers `lanes`."""
    __slots__ = ("columns", "lanes", "_at")

    def __init__(self, columns, lanes):
        self.columns, self.lanes, self._at = columns, lanes, None

    def __len__(self):
        return len(self.lanes)

    def __iter__(self):
        return map(self.columns.names.__getitem__, self.lanes)

    def __getitem__(self, shard):
        return self._value(self._index()[shard])

    def _index(self):
        """shard -> k, made at the first lookup by shard."""
        if self._at is None:
            self._at = dict(zip(self, range(len(self.lanes))))
        return self._at

    def __repr__(self):
        return repr(dict(self.items()))


class LanePlan(_ByLane):
    """ShardLimiter.plan's shard -> count: lane lanes[k] gives counts[k]
    entries from its head (both array('I'))."""
    __slots__ = ("counts",)

    def __init__(self, columns, lanes, counts):
        super().__init__(columns, lanes)
        self.counts = counts

    def _value(self, k):
        return self.counts[k]


class RequestCounts(_ByLane):
    """shard -> [entries, their bytes, entries throttled] of one request: what
    it took from each lane, then (less) what the service did not take; what
    ShardLimiter.answered and .refund read."""
    __slots__ = ("entries", "sizes", "throttled")

    def __init__(self, columns, lanes, entries, sizes, throttled=None):
        """lanes, entries: array('I'); sizes: array('Q')."""
        super().__init__(columns, lanes)
        self.entries, self.sizes = entries, sizes
        self.throttled = array("I", bytes(4 * len(lanes))) if throttled is None else throttled

    def _value(self, k):
        return [self.entries[k], self.sizes[k], self.throttled[k]]

    def less(self, shard, size, throttled):
        """An entry of `shard`, of `size`, that the service did not take (`throttled`: for the shard's limit)."""
        k = self._index()[shard]
        self.entries[k] -= 1
        self.sizes[k] -= size
        self.throttled[k] += bool(throttled)

    def all_throttled(self):
        """The answer to a request throttled as a whole: nothing taken, every entry throttled."""
        none = array("I", bytes(4 * len(self.lanes)))
        return RequestCounts(self.columns, self.lanes, none, array("Q", bytes(8 * len(self.lanes))),
                             array("I", self.entries))
