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
"""
from array import array
from itertools import accumulate
from operator import add

NO_HASH_KEY = 0xFFFFFFFF


def _offsets(lengths):
    at, total = array("I"), 0
    for length in lengths:  # cumulative: itertools.accumulate would be the C-level way
        at.append(total)
        total += length
    return at


def _all_in(events, done):
    return events in done if type(events) is int else all(event in done for event in events)


class EntryTable:
    __slots__ = ("count", "data", "data_at", "data_len", "keys", "key_at", "key_len",
                 "hashes", "hash_at", "hash_len", "events", "sizes")

    @classmethod
    def from_entries(cls, entries):
        """The table of (data bytes, partition key str, explicit hash key str or None, events) tuples."""
        table = cls()
        table.count = len(entries)
        datas = [entry[0] for entry in entries]
        encoded = [entry[1].encode("utf-8", "surrogateescape") for entry in entries]
        table.data = b"".join(datas)
        table.data_len = array("I", map(len, datas))
        table.data_at = _offsets(table.data_len)
        table.keys = b"".join(encoded)
        table.key_len = array("I", map(len, encoded))
        table.key_at = _offsets(table.key_len)
        hashes = [entry[2] for entry in entries]
        if hashes.count(None) == len(hashes):
            table.hashes = table.hash_at = table.hash_len = None
        else:
            texts = [(h or "").encode("ascii") for h in hashes]
            table.hashes = b"".join(texts)
            table.hash_len = array("I", (NO_HASH_KEY if h is None else len(t) for h, t in zip(hashes, texts)))
            table.hash_at = _offsets(len(t) for t in texts)
        table.events = [entry[3] for entry in entries]
        table.sizes = array("I", (d + k for d, k in zip(table.data_len, table.key_len)))
        return table

    @classmethod
    def from_columns(cls, data, data_at, data_len, keys, hashes=None):
        """The table of plain records (event i is entry i) from the fast path's
        columns: `data` bytes, offsets and lengths as uint32 sequences
        (e.g. memoryview slices), partition keys as str; no Python step per entry."""
        table = cls()
        table.count = len(keys)
        table.data = data
        table.data_at, table.data_len = array("I", data_at), array("I", data_len)
        text = "".join(keys)
        if text.isascii():
            table.keys, table.key_len = text.encode("ascii"), array("I", map(len, keys))
        else:
            encoded = [key.encode("utf-8", "surrogateescape") for key in keys]
            table.keys, table.key_len = b"".join(encoded), array("I", map(len, encoded))
        table.key_at = array("I", accumulate(table.key_len, initial=0))
        table.key_at.pop()
        table.hashes = table.hash_at = table.hash_len = None
        table.events = array("I", range(table.count))
        table.sizes = array("I", map(add, table.data_len, table.key_len))
        return table

    def __iter__(self):
        """The entries as tuples (data, key, hash key, events): the slow paths' way."""
        return map(self.entry, range(self.count))

    def without_events(self, done):
        """A table of the entries whose events are not all in `done` (a chunk
        handed back: what an earlier try delivered goes no more)."""
        return EntryTable.from_entries([entry for entry in self if not _all_in(entry[3], done)])

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
