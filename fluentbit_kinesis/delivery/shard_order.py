"""Each shard's records in the order their chunks were handed over, while
chunks are delivered side by side.

Several chunks are in delivery at once (the hand-off's OVERLAP, or Fluent
Bit's `workers`), so that a hot shard, paced at its limit, holds back only its
own records: the other shards' records of later chunks go meanwhile. But a
partition key's records must reach its shard in order, so a chunk sends to a
shard only once every chunk before it has nothing left for that shard.

A chunk takes a ticket (reserve) when its delivery is decided, in the order
the chunks came; until it says which shards it has (declare), every later
chunk waits on all shards. One ShardOrder per stream in the process, beside
its pacing limiter (limiters.py).
"""
import threading

ALL = None  # blocked(): every shard


class ShardOrder:
    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0
        self._tickets = {}  # ticket -> frozenset of shards it still sends to, or None: not known yet
        self._seen = set()  # every shard a chunk has said it sends to

    def reserve(self):
        with self._lock:
            ticket = self._next
            self._next += 1
            self._tickets[ticket] = None
            return ticket

    def declare(self, ticket, shards):
        """The shards `ticket` still has records for (replaces what it said before)."""
        with self._lock:
            if ticket in self._tickets:
                self._tickets[ticket] = frozenset(shards)
                if len(self._seen) < 4096:  # closed shards of many reshards: enough to know some are idle
                    self._seen.update(shards)

    def leave(self, ticket):
        with self._lock:
            self._tickets.pop(ticket, None)

    def idle_shards(self):
        """Whether a shard seen before has nothing to send now while every
        chunk in delivery has said where it sends: only then can one more
        chunk in delivery send sooner (a hot shard's chunks, not a backlog
        on every shard, which would only hold more records in memory)."""
        with self._lock:
            busy = set()
            for shards in self._tickets.values():
                if shards is None:
                    return False
                busy |= shards
            return bool(self._seen - busy)

    def blocked(self, ticket):
        """The shards `ticket` may not send to yet (ALL: every one)."""
        blocked = set()
        with self._lock:
            for earlier, shards in self._tickets.items():  # in ticket order: dicts keep insertion order
                if earlier >= ticket:
                    break
                if shards is None:
                    return ALL
                blocked |= shards
        return blocked
