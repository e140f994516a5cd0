"""The stream's open shards and their hash key ranges, for shard-aware
aggregation, per-shard pacing and per-shard metrics.

A KCL consumer drops a whole KPL aggregate when any sub-record hashes outside
the shard it landed on, so the aggregator must know which shard a partition
key goes to. The map comes from ListShards (open shards only), is refreshed
every REFRESH_SECONDS, and at once when a PutRecords answer shows a record on
another shard than predicted (the stream was resharded).
"""
import bisect
import hashlib
import os
import threading
import time
from dataclasses import dataclass

REFRESH_SECONDS = 60.0
RETRY_SECONDS = 5.0          # after a failed ListShards: do not ask on every flush
MAX_KEY_CANDIDATES = 1 << 20  # random keys tried per shard before giving up
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
        self._state = None          # (starts, shards), swapped whole: readers need no lock
        self._by_id = {}
        self._next_refresh = 0.0
        self._hashes = {}           # partition key -> hash; keys repeat (pods, hosts)
        self._routes = {}           # partition key -> (shard or None, hash), for this map
        self._random_keys = {}      # shard id -> a random key that hashes into it
        self.refreshes = 0
        self.problem = None         # why the last ListShards gave no map; None: it worked

    @property
    def valid(self):
        return self._state is not None

    def shard_by_id(self, shard_id):
        return self._by_id.get(shard_id)

    def maybe_refresh(self):
        """Refreshes when the map is due; cheap when it is not."""
        if time.monotonic() >= self._next_refresh:
            self.refresh()
        return self.valid

    def refresh(self, stale=False):
        """Reads the shard list again. `stale`: the current map is known to be
        wrong, so a failed ListShards leaves no map (records go unaggregated)."""
        with self._lock:
            try:
                shards, every = parse_shards(self._list_shards())
                if not shards:
                    raise ValueError("no open shards")
            except Exception as exc:
                if stale:
                    self._state, self._by_id = None, {}
                self._next_refresh = time.monotonic() + RETRY_SECONDS
                first = self.problem is None
                self.problem = f"ListShards failed ({str(exc)[:200]})"
                state = "kept the previous one" if self._state else "pacing all shards as one until it works"
                # once per outage at warn: it is retried every RETRY_SECONDS
                (self.log.warn if first else self.log.debug)(f"{self.problem}; no fresh shard map, {state}")
                return False
            if self.problem is not None:
                self.log.info(f"shard map read again after: {self.problem}")
                self.problem = None
            old = self._state[1] if self._state else []
            self._state = ([s.start for s in shards], shards)
            self._routes = {}
            self._by_id = every  # closed shards too: where a write raced a reshard
            self._random_keys = {k: v for k, v in self._random_keys.items() if k in self._by_id}
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
        starts, shards = state
        i = bisect.bisect_right(starts, hash_key) - 1
        if i >= 0 and hash_key <= shards[i].end:
            return shards[i]
        return None

    def shard_of_entry(self, entry):
        """Predicted shard id of a PutRecords entry (data, key, explicit hash
        key, ...), for per-shard pacing and metrics: a failed entry's answer
        names no shard. "unknown" without a map."""
        self.maybe_refresh()
        explicit = entry[2]
        shard = self.shard_for_hash(int(explicit)) if explicit is not None else self.route(entry[1])[0]
        return shard.shard_id if shard is not None else "unknown"

    def shards(self):
        state = self._state
        return list(state[1]) if state else []

    def random_key_for(self, shard):
        """A random partition key whose hash falls in `shard`, cached per shard,
        so records without a key can share one aggregate and still never fall
        outside its shard. None if none was found (a tiny shard)."""
        key = self._random_keys.get(shard.shard_id)
        if key is not None:
            return key
        for _ in range(MAX_KEY_CANDIDATES):
            candidate = os.urandom(8).hex()
            if hash_of_key(candidate) in shard:
                self._random_keys[shard.shard_id] = candidate
                return candidate
        return None
