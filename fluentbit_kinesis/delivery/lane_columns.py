"""A flush's lanes, and each request's parts of them, as columns (issue 18).

With many shards a request takes a few entries from each of hundreds of
lanes. The lanes (LaneColumns) and what a request took from each and what
the service acknowledged of it (RequestCounts) stay as arrays indexed by
lane number, so pacing's kernel (pace_native.py) plans, takes and reads the
answer with no Python step per shard. A RequestCounts reads as the dict it
stands for, for the reference paths and the rare answer with failures.
"""
from array import array
from collections.abc import Mapping
from itertools import chain


class LaneColumns:
    """The lanes as pacing's kernel reads them in one call, while none has
    entries put back: lane n's shard names[n], its entries
    entries[bounds[2 n]:bounds[2 n + 1]] and their sizes (sizes[] in the same
    order), the lanes left in `order`; `slots`: each lane's slot in a
    PaceTable, as of `known`; `pinned`: the arrays as pace_native holds them
    (none of them grows)."""
    __slots__ = ("names", "entries", "sizes", "bounds", "order", "slots", "known", "pinned")

    def __init__(self, names, entries, sizes, first, order):
        self.names, self.entries, self.sizes, self.order = names, entries, sizes, array("I", order)
        lanes = len(names)  # lane n: first[n] to first[n + 1]
        self.bounds = array("I", chain.from_iterable(zip(first[:lanes], first[1:lanes + 1])))
        self.slots, self.known, self.pinned = None, None, None


class RequestCounts(Mapping):
    """shard -> [entries, their bytes, entries throttled] of one request: what
    it took from the lanes `lanes` (lane numbers of `columns`), then (less)
    what the service did not take; what ShardLimiter.answered and .refund read."""
    __slots__ = ("columns", "lanes", "entries", "sizes", "throttled", "_at")

    def __init__(self, columns, lanes, entries, sizes, throttled=None):
        """lanes, entries: array('I'); sizes: array('Q')."""
        self.columns, self.lanes, self.entries, self.sizes = columns, lanes, entries, sizes
        self.throttled = array("I", bytes(4 * len(lanes))) if throttled is None else throttled
        self._at = None

    def __len__(self):
        return len(self.lanes)

    def __iter__(self):
        return map(self.columns.names.__getitem__, self.lanes)

    def __getitem__(self, shard):
        k = self._index()[shard]
        return [self.entries[k], self.sizes[k], self.throttled[k]]

    def __repr__(self):
        return repr(dict(self.items()))

    def _index(self):
        """shard -> k, made at the first lookup by shard."""
        if self._at is None:
            self._at = dict(zip(self, range(len(self.lanes))))
        return self._at

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
