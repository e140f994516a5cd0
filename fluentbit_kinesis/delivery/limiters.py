"""One pacing limiter per stream in the process.

A shard's write limit is the stream's, not an instance's: every flush thread
(`workers`) and every [OUTPUT] instance that writes the same stream with the
same account takes from the same per-shard buckets (pacing.ShardLimiter), so
together they pace each shard at its limit instead of each taking all of it.
Other processes (other nodes) are learned from throttles. With dry_run
nothing is sent: NoLimits paces nothing.
"""
import threading

from .batching import request_plan
from .pacing import ShardLimiter, ShardPace
from .shard_order import ShardOrder

_limiters = {}
_lock = threading.Lock()


def stream_key(settings):
    """What names one stream: where it is, which stream, as which account."""
    return (settings.endpoint or settings.region, settings.stream_arn or settings.stream,
            settings.role_arn, settings.access_key_id, settings.profile)


def for_stream(settings):
    """The process's limiter for the settings' stream (none for dry_run: nothing is sent)."""
    if settings.dry_run:
        return NoLimits()
    key = stream_key(settings)
    with _lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = ShardLimiter(settings.stream or settings.stream_arn)
        return limiter


class NoLimits:
    """dry_run: nothing is sent, so nothing is paced."""

    def __init__(self):
        self.order = ShardOrder()

    def plan(self, lanes, max_count, max_bytes, columns=None):
        return request_plan(lanes, lambda shard: UNPACED, max_count, max_bytes)

    def waits(self, lanes, columns=None):
        return {shard: 0.0 for shard, _ in lanes}

    def answered(self, counts):
        pass

    def refund(self, counts):
        pass

    def shares(self, shards=None):
        return {}

    def report(self):
        return None


UNPACED = ShardPace(False, 0.0)  # takes what fits, no tokens
