"""One pacing limiter per stream in the process.

A shard's write limit is the stream's, not an instance's: every flush thread
(`workers`) and every [OUTPUT] instance that writes the same stream with the
same account takes from the same per-shard buckets (pacing.ShardLimiter), so
together they pace each shard at its limit instead of each taking all of it.
Other processes (other nodes) are learned from throttles.
"""
import threading

from .pacing import NoLimits, ShardLimiter

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
