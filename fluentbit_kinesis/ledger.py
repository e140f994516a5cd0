"""Remembers, per chunk, which events are already done (acknowledged by
Kinesis or dead-lettered), so a chunk that Fluent Bit hands back for a retry
sends only the rest. Bounded: the oldest chunks are forgotten first."""
import hashlib
import threading
from collections import OrderedDict

MAX_CHUNKS = 256


def chunk_key(tag, data):
    digest = hashlib.blake2b(data, digest_size=16)
    digest.update(tag.encode("utf-8", "replace"))
    return digest.digest()


class Ledger:
    def __init__(self, max_chunks=MAX_CHUNKS):
        self.max_chunks = max_chunks
        self._done = OrderedDict()  # chunk key -> set of event indices
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._done)

    def done(self, key):
        """Event indices of this chunk already done; empty for a new chunk."""
        if not self._done:
            return frozenset()
        with self._lock:
            return frozenset(self._done.get(key, ()))

    def remember(self, key, indices):
        with self._lock:
            self._done[key] = set(indices)
            self._done.move_to_end(key)
            while len(self._done) > self.max_chunks:
                self._done.popitem(last=False)

    def forget(self, key):
        with self._lock:
            self._done.pop(key, None)
