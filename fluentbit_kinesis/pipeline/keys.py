"""Partition keys: read from the record (partition_key a->b), fixed, or made
up at random when the record has none."""
import itertools
import os
import threading

RANDOM_KEY_POOL = 4096
RANDOM_KEY_CHARS = 16  # 8 random bytes in hex
MAX_KEY_CHARS = 256


class RandomKey(str):
    """A partition key made up because the record had none: aggregation may
    replace it with any key of its choice."""
    __slots__ = ()


class PartitionKeys:
    def __init__(self, settings):
        self.path = settings.partition_key  # None: no key is read from records
        self.fixed = settings.fixed_partition_key
        text = os.urandom(RANDOM_KEY_POOL * RANDOM_KEY_CHARS // 2).hex()  # one system call, not one a key
        pool = [RandomKey(text[i:i + RANDOM_KEY_CHARS]) for i in range(0, len(text), RANDOM_KEY_CHARS)]
        self._random_keys = itertools.cycle(pool)
        self.random = self._random_keys.__next__
        self._pool_text = "".join(pool).encode("ascii")  # RANDOM_KEY_CHARS bytes a key
        self._pool_next = 0  # the pool's key the next column starts at
        self._pool_lock = threading.Lock()
        # the most bytes a partition key can take: 256 characters of up to 4 bytes
        self.max_bytes = max(4 * MAX_KEY_CHARS, len((self.fixed or "").encode()))

    def of(self, record):
        """The record's key from partition_key (a->b), or None when missing."""
        value = record
        for name in self.path:
            if type(value) is not dict:
                return None
            value = value.get(name)
        if type(value) is bytes:
            value = value.decode("utf-8", "replace")
        if type(value) is not str or not value:
            return None
        if not value.isascii():  # a key is text: invalid UTF-8 is replaced whatever invalid_utf8 says
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return value[:MAX_KEY_CHARS]

    def fallback(self):
        """The key of a record without one of its own."""
        return self.fixed or self.random()

    def for_all(self, keys, count):
        """Keys for `count` records given what was read from them (None: none
        read, or no partition_key): (keys, how many were made up)."""
        if self.path is not None:
            missing = keys.count(None)
            if missing:
                keys = [key if key is not None else self.random() for key in keys]
            return keys, missing
        if self.fixed:
            return [self.fixed] * count, 0
        return list(itertools.islice(self._random_keys, count)), 0  # the same keys, taken in C

    def pool_for(self, count):
        """The keys of up to `count` records without one of their own, for C
        (entry_kernels_native.table_columns): (pool bytes, keys in it, bytes a
        key, the first to take): the fixed key, or made-up keys taken in turn."""
        if self.fixed:
            key = self.fixed.encode("utf-8", "surrogateescape")
            return key, 1, len(key), 0
        with self._pool_lock:
            start = self._pool_next
            self._pool_next = (start + count) % RANDOM_KEY_POOL
        return self._pool_text, RANDOM_KEY_POOL, RANDOM_KEY_CHARS, start
