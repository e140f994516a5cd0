"""The stream's open shards and their hash key ranges, for shard-aware
aggregation, per-shard pacing and per-shard metrics.

The aggregator groups records by the shard their key hashes to (so a key's
records stay on one shard, in order). The map comes from ListShards (open
shards only), is refreshed every REFRESH_SECONDS, and on the next flush when a
PutRecords answer shows an aggregate on another shard than predicted (the
stream was resharded). Delivery asks the shards of a flush's entries all at
once (entry_shards: entry_kernels.shard_indices over the map's ShardBounds,
made once per refresh) and keeps them for the whole send.
"""
import bisect
import hashlib
import threading
import time
from dataclasses import dataclass

from ..pipeline.entry_kernels import ShardBounds, shard_indices
from ..telemetry.redact import redact

REFRESH_SECONDS = 60.0
RETRY_SECONDS = 5.0          # after a failed ListShards: do not ask on every flush
_KEY_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class Shard:
    shard_id: str
    start: int  # StartingHashKey
    end: int    # EndingHashKey, inclusive

    def __contains__(self, hash_key):
        return self.start <= hash_key <= self.end


def hash_of_key(key):
    """Kinesis' hash of a partition key: MD5 of its UTF-8 bytes, big-endian."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")


def parse_shards(listed):
    """(open shards by start, every shard by id) from a ListShards answer;
    closed shards (with an EndingSequenceNumber) no longer accept writes.
    A null field counts as absent, as the answer's reader makes it."""
    every, open_ = {}, []
    for s in listed:
        shard = Shard(s["ShardId"], int(s["HashKeyRange"]["StartingHashKey"]),
                      int(s["HashKeyRange"]["EndingHashKey"]))
        every[shard.shard_id] = shard
        if (s.get("SequenceNumberRange") or {}).get("EndingSequenceNumber") is None:
            open_.append(shard)
    return sorted(open_, key=lambda s: s.start), every


class ShardMap:
    def __init__(self, list_shards, logger, refresh_seconds=REFRESH_SECONDS):
        self._list_shards = list_shards  # () -> ListShards "Shards" entries
        self.log = logger
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        # (starts, shards, ShardBounds, shard ids), swapped whole: readers need no lock
        self._state = None
        self._next_refresh = 0.0
        self._hashes = {}           # partition key -> hash; keys repeat (pods, hosts)
        self._routes = {}           # partition key -> (shard or None, hash), for this map
        self.refreshes = 0
        self.problem = None         # why the last ListShards gave no map; None: it worked

    @property
    def valid(self):
        return self._state is not None

    def maybe_refresh(self):
        """Refreshes when the map is due; cheap when it is not."""
        if time.monotonic() >= self._next_refresh:
            self.refresh()
        return self.valid

    def expire(self):
        """The map is known to be stale: read it again on the next flush."""
        self._next_refresh = 0.0

    def refresh(self):
        """Reads the shard list again; a failed ListShards keeps the old map."""
        with self._lock:
            try:
                shards, _every = parse_shards(self._list_shards())
                if not shards:
                    raise ValueError("no open shards")
            except Exception as exc:
                self._next_refresh = time.monotonic() + RETRY_SECONDS
                first = self.problem is None
                self.problem = f"ListShards failed ({redact(exc, limit=200)})"
                state = "kept the previous one" if self._state else "pacing all shards as one until it works"
                # once per outage at warn: it is retried every RETRY_SECONDS
                (self.log.warn if first else self.log.debug)(f"{self.problem}; no fresh shard map, {state}")
                return False
            if self.problem is not None:
                self.log.info(f"shard map read again after: {self.problem}")
                self.problem = None
            old = self._state[1] if self._state else []
            bounds = ShardBounds([s.start for s in shards], [s.end for s in shards])
            self._state = (bounds.starts, shards, bounds, [s.shard_id for s in shards])
            self._routes = {}
            self._next_refresh = time.monotonic() + self.refresh_seconds
            self.refreshes += 1
            if old != shards:
                self.log.debug(f"shard map: {len(shards)} open shards")
            return True

    def hash_of_key(self, key):
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= _KEY_CACHE_LIMIT:
                self._hashes.clear()
            h = self._hashes[key] = hash_of_key(key)
        return h

    def route(self, key):
        """(open shard or None, hash) for a partition key; cached until the map changes."""
        found = self._routes.get(key)
        if found is None:
            routes = self._routes
            if len(routes) >= _KEY_CACHE_LIMIT:
                routes.clear()
            hash_key = self.hash_of_key(key)
            found = routes[key] = (self.shard_for_hash(hash_key), hash_key)
        return found

    def shard_for_hash(self, hash_key):
        """The open shard holding `hash_key`, or None (no map, or a gap)."""
        state = self._state
        if state is None:
            return None
        starts, shards = state[:2]
        i = bisect.bisect_right(starts, hash_key) - 1
        if i >= 0 and hash_key <= shards[i].end:
            return shards[i]
        return None

    def shard_of_entry(self, entry):
        """Predicted shard id of a PutRecords entry (data, key, explicit hash
        key, ...), as entry_shards says: "unknown" without a map, in a gap, or
        for an explicit hash key that is no hash key."""
        if time.monotonic() >= self._next_refresh:
            self.refresh()
        explicit = entry[2]
        if explicit is None:
            shard = self.route(entry[1])[0]
        elif explicit.isascii() and explicit.isdigit():
            shard = self.shard_for_hash(int(explicit))
        else:
            shard = None
        return shard.shard_id if shard is not None else "unknown"

    def entry_shards(self, table):
        """(array('i'): per entry of an EntryTable, the index in `ids` of its
        shard, -1 for none; ids: the open shards' ids), by
        entry_kernels.shard_indices over the current map; None without one."""
        if time.monotonic() >= self._next_refresh:
            self.refresh()
        state = self._state
        return None if state is None else (shard_indices(table, state[2]), state[3])

    def shards(self):
        state = self._state
        return list(state[1]) if state else []
