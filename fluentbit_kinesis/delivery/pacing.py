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
shard has BATCH seconds of tokens (not a call per few tokens).
"""
import math
import threading
import time
from bisect import bisect_right
from functools import partial
from itertools import accumulate, islice

from .batching import UNKNOWN, fitting_sum, request_plan
from .shard_order import ShardOrder

LIMIT_RECORDS = 1000.0        # per shard and second
LIMIT_BYTES = 1024.0 * 1024   # per shard and second: data and partition key
CEILING = 0.98                # the share a producer alone paces at
BURST = 0.8                   # seconds of its rate a bucket holds: the service holds 1, the rest absorbs jitter
MIN_SHARE = 0.02
UNKNOWN_CEILING = 1000.0      # an unknown shard's share is of its learned rate: may grow far
COOLDOWN = 1.0                # seconds between two cuts of a shard's share
WINDOW = 1.0                  # seconds over which what a shard accepted of what we offered fades
TOLERATED = 0.02              # throttled part of late not worth a cut (a stray throttle)
MIN_CUT, MAX_CUT = 0.5, 0.8   # a cut keeps at least / at most this part of the share
PROBE = (0.02, 0.01)          # share gained per second at half the ceiling: a + b * (seconds since the cut)
BATCH = 0.1                   # a shard held back waits for this many seconds of its rate
REPORT_EVERY = 60.0
FIRST_REPORT = 10.0           # seconds after the start: the first line, then one a minute
MAX_SHARDS = 4096
EXACT = 2.0 ** 52            # buckets below this take whole entries without rounding (ShardPace._by_sums)


class ShardPace:
    """The buckets and what was learned of one shard."""
    __slots__ = ("limit_records", "limit_bytes", "share", "ceiling", "records", "bytes", "stamp",
                 "last_cut", "offered", "accepted", "answered_at", "second", "last_second", "minute")

    def __init__(self, known, now):
        self.limit_records = LIMIT_RECORDS if known else None  # None: not paced (yet)
        self.limit_bytes = LIMIT_BYTES if known else None
        self.share = CEILING if known else 1.0
        self.ceiling = CEILING if known else UNKNOWN_CEILING
        self.records = self.share * LIMIT_RECORDS * BURST
        self.bytes = self.share * LIMIT_BYTES * BURST
        self.stamp = now
        self.last_cut = now - 3600.0
        self.offered = self.accepted = 0.0  # entries of late (fading over WINDOW seconds)
        self.answered_at = now
        self.second = [now, 0, 0]         # this second: start, records and bytes accepted
        self.last_second = (0, 0)
        self.minute = [0, 0, 0, 0]        # records, bytes accepted; throttled; times held back

    def rates(self):
        return self.share * self.limit_records, self.share * self.limit_bytes

    def refill(self, now):
        elapsed = now - self.stamp
        if elapsed <= 0:
            return
        self.stamp = now
        share = self.share
        if share != self.ceiling:  # at the ceiling (a producer alone) the headroom is 0: nothing to grow
            quiet = now - self.last_cut
            headroom = 2.0 * max(0.0, 1.0 - share / self.ceiling)  # 1 at half the ceiling
            share = self.share = min(self.ceiling, share + elapsed * (PROBE[0] + PROBE[1] * quiet) * headroom)
        if self.limit_records is not None:
            records, data = share * self.limit_records, share * self.limit_bytes  # rates()
            self.records = min(records * BURST, self.records + elapsed * records)
            self.bytes = min(data * BURST, self.bytes + elapsed * data)

    def take(self, sizes, start, max_count, max_bytes):
        """How many entries of a lane (their `sizes`, from `start`) may go now,
        up to max_count entries and max_bytes (the first whatever its size);
        their tokens are taken."""
        return self.take_sum(sizes, start, max_count, max_bytes)[0]

    def take_sum(self, sizes, start, max_count, max_bytes):
        """take's count, and those entries' bytes."""
        if self.limit_records is None:
            return fitting_sum(sizes, start, max_count, max_bytes)
        if not (abs(self.records) < EXACT and abs(self.bytes) < EXACT):  # never in practice
            return self._one_by_one(sizes, start, max_count, max_bytes)
        # what fits, up to one more than the records allow: that one says whether any was held back
        allowed = math.floor(self.records) if self.records >= 1.0 else 0
        count, sent = fitting_sum(sizes, start, min(max_count, allowed + 1), max_bytes)
        if count <= self.records and sent <= self.bytes:  # the buckets hold them all: as the loop below
            self.records -= count
            self.bytes -= sent
            return count, sent
        return self._by_sums(sizes, start, count)

    def _by_sums(self, sizes, start, fit):
        """take_one_by_one's count and bytes where a bucket runs short, by
        running sums (no Python step per entry): the first `fit` entries fit
        the request. Exactly the loop's floats: below EXACT, a bucket less an
        entry it holds (an integer) is exact, so the loop's tokens after j
        entries are the tokens less the sum of their sizes, and the records
        less j; only an entry larger than a full bucket (the last taken)
        rounds, computed here as in the loop."""
        records, tokens = self.records, self.bytes
        allowed = min(fit, math.floor(records) if records >= 1.0 else 0)  # records: one token each
        running = list(accumulate(islice(sizes, start, start + allowed)))  # no more can go
        count = bisect_right(running, tokens)  # the bytes bucket holds each in turn
        taken = running[count - 1] if count else 0
        if count < allowed and tokens - taken >= self.share * self.limit_bytes * BURST:
            count += 1  # larger than what is left, but not than a full bucket: it goes, the last
            self.records, self.bytes = records - count, (tokens - taken) - (running[count - 1] - taken)
        else:
            count = min(count, allowed)
            taken = running[count - 1] if count else 0
            if count:
                self.records, self.bytes = records - count, tokens - taken
        if count < fit:
            self.minute[3] += 1  # held back: at its limit
        return count, (running[count - 1] if count else 0)

    def take_one_by_one(self, sizes, start, max_count, max_bytes):
        """take, entry by entry (the reference; where a bucket runs short)."""
        return self._one_by_one(sizes, start, max_count, max_bytes)[0]

    def _one_by_one(self, sizes, start, max_count, max_bytes):
        """take_one_by_one's count, and those entries' bytes."""
        full_bytes = self.share * self.limit_bytes * BURST
        records, tokens = self.records, self.bytes
        count = sent = 0
        for size in islice(sizes, start, None):
            if count >= max_count or (count and sent + size > max_bytes):
                break
            # an entry larger than a full bucket goes when the bucket is full
            if records < 1.0 or (tokens < size and tokens < full_bytes):
                self.minute[3] += 1  # held back: at its limit
                break
            records -= 1.0
            tokens -= size
            count += 1
            sent += size
        self.records, self.bytes = records, tokens
        return count, sent

    def wait(self, sizes):
        """Seconds until this shard can take a batch of its lane (at least its head)."""
        if self.limit_records is None:
            return 0.0
        records, data = self.rates()
        batch = min(len(sizes), max(1.0, records * BATCH))
        head = min(sizes[0], data * BURST)
        wait = max((batch - self.records) / records, (head - self.bytes) / data)
        return wait if wait <= 0 else max(wait, 0.001)

    def answered(self, acked, acked_bytes, throttled, now):
        """One answer's entries for this shard; True when it cut the share."""
        second = self.second
        if now - second[0] >= 1.0:
            self.last_second = (second[1], second[2])
            second[:] = [now, 0, 0]
        second[1] += acked
        second[2] += acked_bytes
        minute = self.minute
        minute[0] += acked
        minute[1] += acked_bytes
        minute[2] += throttled
        fade = math.exp(min(0.0, self.answered_at - now) / WINDOW)  # what it offered of late
        self.answered_at = now
        self.offered = self.offered * fade + acked + throttled
        self.accepted = self.accepted * fade + acked
        if not throttled or now - self.last_cut < COOLDOWN or self.accepted >= self.offered * (1 - TOLERATED):
            return False
        if self.limit_records is None:  # first throttle of an unknown shard: what it took is its rate
            best = max(self.last_second, (second[1], second[2]))
            self.limit_records = max(LIMIT_RECORDS * MIN_SHARE, float(best[0]))
            self.limit_bytes = max(LIMIT_BYTES * MIN_SHARE, float(best[1]))
            self.share = 1.0
        else:
            kept = min(MAX_CUT, max(MIN_CUT, self.accepted / max(1, self.offered)))
            self.share = max(MIN_SHARE, self.share * kept)
        self.records = min(self.records, 0.0)  # the service's bucket is empty: let it fill
        self.bytes = min(self.bytes, 0.0)
        self.last_cut = now
        self.offered = self.accepted = 0.0
        return True


class ShardLimiter:
    def __init__(self, name="stream", clock=time.monotonic):
        self.name = name
        self.clock = clock
        self.shards = {}  # shard id -> ShardPace
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
            pace = self.shards[shard] = ShardPace(shard != UNKNOWN, now)
        pace.refill(now)
        return pace

    def plan(self, lanes, max_count, max_bytes):
        """One request: shard -> how many entries from the head of its lane go
        now, within max_count and max_bytes; their tokens are taken. `lanes`:
        (shard, sizes of its entries). Nothing until some shard has a batch
        (BATCH seconds) of tokens: not a call per few tokens; then every shard
        gives what it has (batching.request_plan)."""
        with self._lock:
            pace_of = partial(self._pace, self.clock())  # pace_of(shard): no Python frame of its own
            if not any(pace_of(shard).wait(sizes) <= 0 for shard, sizes in lanes):
                return {}
            return request_plan(lanes, pace_of, max_count, max_bytes)

    def waits(self, lanes):
        """shard -> seconds until it can take a batch of its (non-empty) lane."""
        with self._lock:
            now = self.clock()
            return {shard: self._pace(now, shard).wait(sizes) for shard, sizes in lanes}

    def answered(self, counts):
        """counts: shard -> (entries acknowledged, their bytes, entries throttled), of one answer."""
        with self._lock:
            now = self.clock()
            for shard, (acked, acked_bytes, throttled) in counts.items():
                self._pace(now, shard).answered(acked if acked > 0 else 0, acked_bytes if acked_bytes > 0 else 0,
                                                throttled, now)

    def refund(self, counts):
        """counts: shard -> (entries, bytes, _) of a request that failed as a whole
        (network, 5xx): they never reached a shard, so their tokens return."""
        with self._lock:
            for shard, (records, data, _) in counts.items():
                pace = self.shards.get(shard)
                if pace is not None:
                    pace.records += records
                    pace.bytes += data

    def shares(self, shards=None):
        """shard -> the share of its limit it is paced at (1.0 for one not paced)."""
        with self._lock:
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
