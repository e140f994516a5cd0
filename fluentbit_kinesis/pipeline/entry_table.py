"""EntryTable: a flush's Kinesis entries as columns, with no Python object
per entry: the records' bytes in one buffer, the partition keys in another,
offsets and lengths in arrays. Delivery refers to an entry by its index, so
grouping by shard, building request bodies and acknowledging run over index
arrays (natively: entry_kernels.py) instead of per-entry tuples.

The columns (the contract the native kernels read):
  data, data_at, data_len   the records' bytes: data[data_at[i]:data_at[i] + data_len[i]]
  keys, key_at, key_len     the partition keys' UTF-8 bytes, the same way
  hashes, hash_at, hash_len the explicit hash keys' ASCII digits, or hashes None
                            (no entry has one); hash_len[i] == NO_HASH_KEY: entry i has none
  events                    per entry: its event index (int) or the events it carries (a list)
  sizes                     data_len + key_len: what Kinesis counts against its limits
  keyless                   None, or per entry 1 when its key was made up (no key of its own):
                            aggregation gives it a key of its choice (keys.RandomKey)
  pool                      None, or (pool bytes, keys in it, bytes a key, first) when every
                            entry's key is the pool's next (PartitionKeys.pool_for): entry i's
                            is key (first + i) % keys in it, so its shard is known per pool

Built from tuples with C-level operations only (map, join, accumulate): no
Python frame runs per entry.
"""
from array import array
from itertools import accumulate, repeat
from operator import add, itemgetter

from .keys import RandomKey

NO_HASH_KEY = 0xFFFFFFFF
# a column of tuples: map(itemgetter) per field, 6x faster than zip(*entries) (a transpose of 8,000 arguments)
_FIELDS = _DATA, _KEY, _HASH, _EVENTS = tuple(map(itemgetter, range(4)))
_SHAPED_EVENT = itemgetter(2)


def _offsets(lengths):
    """array('I') of where each of these lengths starts, one after the other."""
    at = array("I", accumulate(lengths, initial=0))
    at.pop()  # the total: not an entry's
    return at


def _all_in(events, done):
    return events in done if type(events) is int else all(event in done for event in events)


class EntryTable:
    __slots__ = ("count", "data", "data_at", "data_len", "keys", "key_at", "key_len",
                 "hashes", "hash_at", "hash_len", "events", "sizes", "keyless", "pool",
                 "native")  # native: the columns as the C code reads them (entry_kernels_native), when made

    @classmethod
    def from_entries(cls, entries):
        """The table of (data bytes, partition key str, explicit hash key str or None, events) tuples."""
        return cls._of(*(list(map(field, entries)) for field in _FIELDS))

    @classmethod
    def from_shaped(cls, shaped):
        """The table of shaped records (data bytes, partition key str, event index),
        each its own entry without an explicit hash key (a table: as it is)."""
        if isinstance(shaped, EntryTable):
            return shaped
        return cls._of(list(map(_DATA, shaped)), list(map(_KEY, shaped)), None, list(map(_SHAPED_EVENT, shaped)))

    @classmethod
    def _of(cls, datas, keys, hashes, events):
        table = cls()
        table.count = len(events)
        table.data = b"".join(datas)
        table.data_len = array("I", map(len, datas))
        table.data_at = _offsets(table.data_len)
        table._set_keys(keys)
        table.hashes = table.hash_at = table.hash_len = None
        if hashes is not None and hashes.count(None) != len(hashes):
            texts = [(h or "").encode("ascii") for h in hashes]  # packed entries: few per flush
            table.hashes = b"".join(texts)
            table.hash_len = array("I", (NO_HASH_KEY if h is None else len(t) for h, t in zip(hashes, texts)))
            table.hash_at = _offsets(map(len, texts))
        table.events = events
        table.sizes = array("I", map(add, table.data_len, table.key_len))
        table.keyless = table.pool = None
        return table

    @classmethod
    def from_columns(cls, data, data_at, data_len, keys, key_at, key_len, sizes):
        """The table of plain records (event i is entry i) from columns made
        in C (entry_kernels_native.table_columns): data and keys as bytes, the
        rest array('I'); no Python step per entry."""
        table = cls()
        table.count = len(data_at)
        table.data, table.data_at, table.data_len = data, data_at, data_len
        table.keys, table.key_at, table.key_len = keys, key_at, key_len
        table.hashes = table.hash_at = table.hash_len = None
        table.events = array("I", range(table.count))
        table.sizes = sizes
        table.keyless = table.pool = None
        return table

    def _set_keys(self, keys):
        """The key columns of these partition keys (str)."""
        text = "".join(keys)
        if text.isascii():  # the usual case: one encode for all
            self.keys, self.key_len = text.encode("ascii"), array("I", map(len, keys))
        else:
            encoded = list(map(str.encode, keys, repeat("utf-8"), repeat("surrogateescape")))
            self.keys, self.key_len = b"".join(encoded), array("I", map(len, encoded))
        self.key_at = _offsets(self.key_len)

    def __iter__(self):
        """The entries as tuples (data, key, hash key, events): the slow paths' way."""
        return map(self.entry, range(self.count))

    def without_events(self, done):
        """A table of the entries whose events are not all in `done` (a chunk
        handed back: what an earlier try delivered goes no more)."""
        kept = [i for i in range(self.count) if not _all_in(self.events[i], done)]
        table = EntryTable.from_entries(list(map(self.entry, kept)))
        if self.keyless is not None:
            table.keyless = bytes(map(self.keyless.__getitem__, kept))
        return table

    def shaped(self):
        """The entries as shaped records (data, key, event index), a made-up
        key a RandomKey: the tuple way's input (aggregation's slow path)."""
        flags = self.keyless or bytes(self.count)
        return [(self.data_of(i), RandomKey(self.key_of(i)) if flags[i] else self.key_of(i), self.events[i])
                for i in range(self.count)]

    def __len__(self):
        return self.count

    def data_of(self, i):
        at = self.data_at[i]
        return bytes(self.data[at:at + self.data_len[i]])

    def key_of(self, i):
        at = self.key_at[i]
        return bytes(self.keys[at:at + self.key_len[i]]).decode("utf-8", "surrogateescape")

    def hash_of(self, i):
        if self.hashes is None or self.hash_len[i] == NO_HASH_KEY:
            return None
        at = self.hash_at[i]
        return bytes(self.hashes[at:at + self.hash_len[i]]).decode("ascii")

    def entry(self, i):
        """Entry i as the tuple it came from."""
        return self.data_of(i), self.key_of(i), self.hash_of(i), self.events[i]
