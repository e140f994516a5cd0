"""Client-side pacing per predicted shard, adapting to throttles (AIMD).

Kinesis throttles per shard (1,000 records/s, 1 MB/s). Resending throttled
entries at once only burns the retry budget, and a hot shard would burn it
for the whole flush. So each shard gets a token bucket:

- unlimited until the shard is throttled;
- the first throttle sets its rate to what that answer accepted for the
  shard, per second (shard limits are per second, so one burst's accepted
  count is a fair first guess);
- later throttles cut the rate multiplicatively, at most once per `cooldown`
  seconds (one congestion event, not one per entry): to the share the answer
  accepted, at least `decrease`; never below `min_rate`;
- every acknowledged entry adds `increase` records/s (the rate can double in
  a second at full use); after `quiet` seconds without a throttle the limit
  is dropped.

A whole request refused as throttled names no shard: backoff handles it, the
limiter does not.

Entries of a shard without a token are deferred to a later round, keeping
their order; they never count as a failed try. Which shard an entry lands on
comes from `predict_shard(entry)` (default: one bucket "stream"): real
per-entry throttle answers carry no ShardId.
"""
import threading
import time

STREAM = "stream"
MAX_BUCKETS = 4096


def one_bucket(_entry):
    return STREAM


class Bucket:
    __slots__ = ("rate", "tokens", "stamp", "last_throttle")

    def __init__(self, now):
        self.rate = None  # records per second; None: not limited
        self.tokens = 0.0
        self.stamp = now
        self.last_throttle = 0.0

    def refill(self, now):
        if self.rate is not None:
            # a burst of at most a quarter second of the rate
            self.tokens = min(max(1.0, self.rate / 4), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now


class ShardLimiter:
    def __init__(self, predict_shard=None, min_rate=50.0, decrease=0.5, increase=1.0, quiet=10.0,
                 cooldown=1.0, clock=time.monotonic):
        self.predict_shard = predict_shard or one_bucket
        self.min_rate = min_rate
        self.decrease = decrease
        self.increase = increase
        self.quiet = quiet
        self.cooldown = cooldown
        self.clock = clock
        self.buckets = {}
        self._lock = threading.Lock()

    def _bucket(self, shard, now):
        bucket = self.buckets.get(shard)
        if bucket is None:
            if len(self.buckets) >= MAX_BUCKETS:  # bounded: forget unlimited buckets first
                for key in [k for k, b in self.buckets.items() if b.rate is None]:
                    del self.buckets[key]
                if len(self.buckets) >= MAX_BUCKETS:
                    self.buckets.clear()
            bucket = self.buckets[shard] = Bucket(now)
        return bucket

    def _any_limited(self):
        return any(b.rate is not None for b in self.buckets.values())

    def split(self, entries):
        """(ready entries, deferred entries, seconds until a deferred one may go);
        both lists keep the input order, and a shard's entries are never reordered."""
        if not self._any_limited():  # the usual case: no shard throttled lately, no per-entry work
            return list(entries), [], 0.0
        now = self.clock()
        ready, deferred, blocked = [], [], set()
        wait = 0.0
        with self._lock:
            for entry in entries:
                shard = self.predict_shard(entry)
                if shard in blocked:
                    deferred.append(entry)
                    continue
                bucket = self._bucket(shard, now)
                if bucket.rate is not None:
                    if now - bucket.last_throttle > self.quiet:
                        bucket.rate = None
                    else:
                        bucket.refill(now)
                        if bucket.tokens < 1.0:
                            blocked.add(shard)
                            deferred.append(entry)
                            need = (1.0 - bucket.tokens) / bucket.rate
                            wait = need if not wait else min(wait, need)
                            continue
                        bucket.tokens -= 1.0
                ready.append(entry)
        return ready, deferred, wait

    def record(self, acked, throttled):
        """acked, throttled: lists of entries from one request's answer."""
        if not throttled and not self._any_limited():  # acks only raise limits that exist
            return
        now = self.clock()
        with self._lock:
            counts = {}  # shard -> [acked, throttled]
            for entry in acked:
                counts.setdefault(self.predict_shard(entry), [0, 0])[0] += 1
            for entry in throttled:
                counts.setdefault(self.predict_shard(entry), [0, 0])[1] += 1
            for shard, (ok, hot) in counts.items():
                bucket = self._bucket(shard, now)
                if bucket.rate is not None:
                    bucket.rate += self.increase * ok
                if hot and now - bucket.last_throttle > self.cooldown:
                    self._cut(bucket, now, ok, ok / (ok + hot))

    def _cut(self, bucket, now, accepted, accepted_share):
        if bucket.rate is None:
            # first throttle: shard limits are per second, so what one burst got
            # through is a fair first guess of the shard's rate
            bucket.rate = max(self.min_rate, float(accepted))
        else:
            bucket.rate = max(self.min_rate, bucket.rate * max(self.decrease, accepted_share))
        bucket.tokens = min(bucket.tokens, 0.0)
        bucket.stamp = now
        bucket.last_throttle = now

    def rates(self):
        """shard -> current limit (records/s) for the limited shards."""
        with self._lock:
            return {k: b.rate for k, b in self.buckets.items() if b.rate is not None}
