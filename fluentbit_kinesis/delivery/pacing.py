"""Pacing every shard at its write limit, and learning our part of it.

Kinesis takes at most 1,000 records and 1 MiB (data plus partition key) per
second per shard, with about a second of burst; an entry over that is answered
ProvisionedThroughputExceededException: a wasted call, a point on the stream's
WriteProvisionedThroughputExceeded alarm, capacity taken from other producers.
So every shard has two token buckets, records and bytes (an aggregate is one
record), filled at `share` of the limit and holding BURST (0.8) seconds of it:
the service's bucket holds one, and the difference absorbs a request that
reaches it later than the next one (seen: 60 ms on a loaded machine):

- a known shard starts at CEILING (0.98) of its limit from the first call: a
  hair under, so the service's own bucket fills and absorbs jitter;
- another producer on the shard shows as throttled entries. When more than
  TOLERATED of what we offered of late (a fading WINDOW) was throttled, at
  most once per COOLDOWN, the share is cut to the part the shard accepted,
  by a fifth at least and half at most: one step to about our real part. A
  stray throttle now and then changes nothing;
- while no cut comes the share grows back, the faster the further below the
  ceiling it is and the longer it has been quiet (PROBE). Cuts in proportion
  and a growth that favours the smaller share make producers that never talk
  to each other converge on equal parts (AIMD); one left alone is back near
  the ceiling within about 15 s;
- a shard without a prediction (UNKNOWN: no shard map) is not paced until its
  first throttle, then at what it accepted in the last second, learning the
  same way with no ceiling.

One ShardLimiter serves a whole stream in the process (limiters.py): every
flush thread and output instance writing it takes from the same buckets. The
caller predicts each entry's shard (shards.ShardMap, from the hash key) and
keeps a shard's entries in order (batching.Lanes); a request goes once some
shard has BATCH seconds of tokens (not a call per few tokens: half a second,
about a full request at 1,000 records/s, as a request costs about the same
CPU however few entries it carries).
"""
import threading
import time
from functools import partial

from . import pace_lanes, pace_native
from .batching import UNKNOWN, request_plan
from .lane_columns import RequestCounts
from .pace_table import PaceTable
from .shard_order import ShardOrder
from .shard_pace import (BATCH, BURST, CEILING, COOLDOWN, EXACT, LIMIT_BYTES, LIMIT_RECORDS,  # noqa: F401
                         MAX_CUT, MIN_CUT, MIN_SHARE, PROBE, TOLERATED, UNKNOWN_CEILING, WINDOW, ShardPace)

REPORT_EVERY = 60.0
FIRST_REPORT = 10.0           # seconds after the start: the first line, then one a minute
MAX_SHARDS = 4096


class ShardLimiter:
    def __init__(self, name="stream", clock=time.monotonic, native=None):
        """native: every shard's state in a PaceTable, each request's pacing in
        one C call (pace_native.py; True also where it is not built: the
        reference then runs on the table's rows); None: where it is built."""
        self.name = name
        self.clock = clock
        native = pace_native.AVAILABLE if native is None else native
        self.table = PaceTable() if native else None
        self.shards = self.table.views if native else {}  # shard id -> ShardPace (a PaceSlot of the table)
        self.order = ShardOrder()  # each shard's records in their chunks' order
        self._lock = threading.Lock()
        self._window = clock()  # since when report() counts
        self._next_report = self._window + FIRST_REPORT

    def _pace(self, now, shard):
        """The shard's ShardPace, refilled up to `now` (made at its first use)."""
        pace = self.shards.get(shard)
        if pace is None:
            if len(self.shards) >= MAX_SHARDS:  # closed shards of many reshards
                self.shards.clear()
                if self.table is not None:
                    self.table.clear()
            known = shard != UNKNOWN
            pace = self.shards[shard] = ShardPace(known, now) if self.table is None else self.table.add(
                shard, known, now)
        pace.refill(now)
        return pace

    def plan(self, lanes, max_count, max_bytes, columns=None):
        """One request: shard -> how many entries from the head of its lane go
        now, within max_count and max_bytes; their tokens are taken. `lanes`:
        (shard, sizes of its entries); `columns`, when given, the same lanes as
        a lane_columns.LaneColumns (the kernel reads them with no step per lane).
        Nothing until some shard has a batch (BATCH seconds) of tokens: not a
        call per few tokens; then every shard gives what it has
        (batching.request_plan)."""
        with self._lock:
            now = self.clock()
            if self.table is not None:
                planned = (pace_native.plan(self.table, lanes, now, max_count, max_bytes, MAX_SHARDS)
                           if columns is None else
                           pace_lanes.plan(self.table, columns, now, max_count, max_bytes, MAX_SHARDS))
                if planned is not None:
                    return planned
            pace_of = partial(self._pace, now)  # pace_of(shard): no Python frame of its own
            if not any(pace_of(shard).wait(sizes) <= 0 for shard, sizes in lanes):
                return {}
            return request_plan(lanes, pace_of, max_count, max_bytes)

    def waits(self, lanes, columns=None):
        """shard -> seconds until it can take a batch of its (non-empty) lane;
        `columns` as for plan."""
        with self._lock:
            now = self.clock()
            if self.table is not None:
                waited = (pace_native.waits(self.table, lanes, now, MAX_SHARDS) if columns is None else
                          pace_lanes.waits(self.table, columns, now, MAX_SHARDS))
                if waited is not None:
                    return waited
            return {shard: self._pace(now, shard).wait(sizes) for shard, sizes in lanes}

    def take_columns(self, columns, max_count, max_bytes):
        """plan(lanes, max_count, max_bytes, columns) and the entries it plans
        taken from the heads of the lanes (batching.Lanes.take's usual case),
        in one kernel call: (entries, RequestCounts, the lanes emptied); ()
        when no shard may send yet; None where the kernel declines (then plan)."""
        if self.table is None:
            return None
        with self._lock:
            return pace_lanes.take(self.table, columns, self.clock(), max_count, max_bytes, MAX_SHARDS)

    def answered(self, counts):
        """counts: shard -> (entries acknowledged, their bytes, entries throttled), of one answer."""
        with self._lock:
            now = self.clock()
            if self.table is not None:
                native = pace_lanes if type(counts) is RequestCounts else pace_native
                if native.answered(self.table, counts, now, MAX_SHARDS) is not None:
                    return
            for shard, (acked, acked_bytes, throttled) in counts.items():
                self._pace(now, shard).answered(acked if acked > 0 else 0, acked_bytes if acked_bytes > 0 else 0,
                                                throttled, now)

    def refund(self, counts):
        """counts: shard -> (entries, bytes, _) of a request that failed as a whole
        (network, 5xx): they never reached a shard, so their tokens return."""
        with self._lock:
            if self.table is not None:
                self.table.refund(counts)
                return
            for shard, (records, data, _) in counts.items():
                pace = self.shards.get(shard)
                if pace is not None:
                    pace.records += records
                    pace.bytes += data

    def shares(self, shards=None):
        """shard -> the share of its limit it is paced at (1.0 for one not paced)."""
        with self._lock:
            if self.table is not None:
                return self.table.shares(shards)
            return {k: (p.share if p.limit_records is not None else 1.0) for k, p in self.shards.items()
                    if shards is None or k in shards}

    def report(self):
        """FIRST_REPORT seconds after the start, then once per REPORT_EVERY: a
        line when any shard was at its limit since the last one."""
        now = self.clock()
        with self._lock:
            if now < self._next_report:
                return None
            seconds, self._window, self._next_report = now - self._window, now, now + REPORT_EVERY
            stats = {k: list(p.minute) for k, p in self.shards.items()}
            for pace in self.shards.values():
                pace.minute[:] = [0, 0, 0, 0]
            shares = {k: p.share for k, p in self.shards.items() if p.limit_records is not None}
        busy = sorted(k for k, m in stats.items() if m[2] or m[3])
        if not busy:
            return None
        records = sum(m[0] for m in stats.values()) / seconds
        sent = sum(m[1] for m in stats.values()) / seconds
        throttled = sum(m[2] for m in stats.values())
        low = min((shares[k] for k in busy if k in shares), default=1.0)
        return (f"stream {self.name} at its write limit: {len(busy)} of {len(stats)} shards held entries "
                f"back or were throttled in the last {seconds:.0f} s ({', '.join(busy[:8])}"
                f"{', ...' if len(busy) > 8 else ''}); sent {records:,.0f} records/s, {sent / 1e6:.2f} MB/s; "
                f"{throttled} entries throttled; paced at {low:.2f} of the limit on the slowest")
