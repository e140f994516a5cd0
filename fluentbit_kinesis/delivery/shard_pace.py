"""One shard's buckets and what was learned of it (pacing.py says how and
why): the reference of pacing's arithmetic. ShardLimiter keeps every
shard's state in a PaceTable (pace_table.py) where the native kernel
(csrc/fastjson_pace.c) runs it, exactly these floats, and these methods run
on its rows too (PaceSlot) where it declines."""
import math
from bisect import bisect_right
from itertools import accumulate, islice

from .batching import fitting_sum

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
BATCH = 0.5                   # a shard held back waits for this many seconds of its rate: about a full request (500)
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
