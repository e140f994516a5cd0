"""Aggregator.pack over an EntryTable (the fast path's), answered as an
EntryTable (csrc/fastjson_kpl_table.c, issue 18): no Python object per record.

The records' bytes stay where the shaper's table has them: C reads them at
the table's offsets, numbers the partition keys (fj_kpl_key_ids), then plans
and writes as fj_kpl_pack does, every entry's bytes into one buffer that
becomes the new table's data as it is (aggregates written there, records
alone copied; the buffer is this thread's again once no table holds it,
scratch.reusable, so its pages are not faulted in chunk after chunk).
Python does what is per key (each distinct key decoded and
routed once, kpl_native's key table) and per entry (its events: the record's
event index, or an aggregate's AggregateEvents). The entries are those of
`Aggregator._pack_python` over the same records (tests/pipeline/test_kpl_table.py).

A record without a key of its own is flagged in the table's `keyless`
column (the fast path fills it; None: every record has its own key).
`pack` returns None on anything unusual: the caller takes the tuple way.
"""
from array import array

from . import kpl_native, scratch
from .entry_table import EntryTable
from .kpl import AggregateEvents

try:
    from .._fastjson import ffi, lib
except ImportError:  # not compiled: the Python reference only
    ffi = lib = None

AVAILABLE = lib is not None and hasattr(lib, "fj_kpl_pack_table") and array("I").itemsize == 4
ROW = 4  # FJ_KPL_ROW: aggregate?, start in the events, count, key
_BIG = 1 << 63

if AVAILABLE:
    _alloc = ffi.new_allocator(should_clear_after_alloc=False)


def pack(table, keyless, route, turn, limit, skip):
    """(an EntryTable of the entries, how many records took a keyless key),
    or None. As kpl_native.pack, over `table`'s records."""
    count = table.count
    if not AVAILABLE or not count or not keyless or limit < 0 or skip < 0:
        return None
    try:
        events = table.events if type(table.events) is array else array("I", table.events)
        columns = [_u32(column, count) for column in (table.data_at, table.data_len, events)]
    except (TypeError, OverflowError, ValueError):
        return None
    flags = table.keyless
    keyless_count = 0 if flags is None else flags.count(1)
    keys = _keys(table, flags, keyless_count)
    if keys is None:
        return None
    keyed, rec_keys = keys
    key_table = kpl_native._key_table(keyed, keyless, route)
    if key_table is None:
        return None
    packed = _run(table, columns, rec_keys, flags, key_table, turn % len(keyless), min(limit, _BIG), min(skip, _BIG))
    return None if packed is None else (packed, keyless_count)


def _u32(column, count):
    if type(column) is not array or column.typecode != "I" or len(column) != count:
        raise TypeError
    return ffi.from_buffer("uint32_t[]", column)


def _keys(table, flags, keyless_count):
    """(the distinct keys of their own, as str in first-use order; each
    record's key id as C reads it, NULL when none has a key of its own), or None."""
    count = table.count
    if keyless_count == count:
        return {}, ffi.NULL
    try:
        key_at, key_len = _u32(table.key_at, count), _u32(table.key_len, count)
        keys = ffi.from_buffer("uint8_t[]", table.keys)
    except TypeError:
        return None
    ids, firsts = _alloc("uint32_t[]", count), _alloc("uint32_t[]", count)
    n_ids = ffi.new("size_t *")
    rc = lib.fj_kpl_key_ids(keys, len(table.keys), key_at, key_len,
                            ffi.from_buffer("uint8_t[]", flags) if flags else ffi.NULL, count, ids, firsts, n_ids)
    if rc != 0:
        return None
    raw, at, size = table.keys, table.key_at, table.key_len
    texts = [bytes(raw[at[i]:at[i] + size[i]]).decode("utf-8", "surrogateescape")
             for i in ffi.unpack(firsts, n_ids[0])]  # per distinct key
    return dict.fromkeys(texts), ids


def _run(table, columns, rec_keys, flags, key_table, turn, limit, skip):
    """fj_kpl_pack_table's answer as an EntryTable, or None when it declines."""
    encoded = kpl_native._encoded(key_table.keys)
    if encoded is None:
        return None
    key_bytes, key_lens = encoded
    hash_bytes = "".join(key_table.hash_keys).encode("ascii")
    keep = []
    buf = kpl_native._buffers(keep)
    data_at, data_len, events = columns
    count = table.count
    given = ffi.new("struct fj_kpl_input *", {
        "data": buf(table.data), "data_size": len(table.data), "data_lens": data_len, "n": count,
        "rec_keys": rec_keys, "keyless": buf(flags) if flags else ffi.NULL,
        "key_bytes": buf(key_bytes), "key_bytes_size": len(key_bytes),
        "key_lens": buf(key_lens, "uint32_t[]"), "key_shards": buf(array("i", key_table.shards), "int32_t[]"),
        "hash_bytes": buf(hash_bytes), "hash_bytes_size": len(hash_bytes),
        "hash_lens": buf(array("I", map(len, key_table.hash_keys)), "uint32_t[]"),
        "n_keys": len(key_table.keys), "keyless_base": key_table.keyless_base, "n_keyless": key_table.n_keyless,
        "n_shards": len(key_table.shard_ids), "turn": turn, "limit": limit, "skip": skip})
    out = _Answer(count)
    # first guesses: every record's bytes and key, with room for each one's framing
    caps = (sum(table.data_len) + 32 * count + 2 * len(key_bytes) + 4096, len(table.keys) + count + 64, 48 * count)
    for _attempt in range(2):  # else C said exactly how much
        out.room(*caps)
        rc = lib.fj_kpl_pack_table(given, data_at, events, out.c)
        if rc != -2:  # FJ_NEED_ROOM
            break
        caps = (out.c.data_used, out.c.keys_used, out.c.hashes_used)
    if rc != 0:
        return None
    return out.table(key_table)


class _Answer:
    """fj_kpl_pack_table's output: the buffers and per-entry columns it writes."""

    def __init__(self, count):
        self.columns = [array("I", [0]) * count for _ in range(7)]  # data_at .. sizes, cut to the entries
        self.rows, self.events = _alloc("uint32_t[]", ROW * count), _alloc("uint32_t[]", count)
        self.count = count

    def room(self, data_cap, keys_cap, hashes_cap):
        self.data = scratch.reusable(_alloc, "kpl_table", data_cap)  # a chunk's size: kept, for its pages
        self.keys, self.hashes = (_alloc("uint8_t[]", max(1, cap)) for cap in (keys_cap, hashes_cap))
        self.c = ffi.new("struct fj_kpl_table_out *", {
            "data": self.data, "keys": self.keys, "hashes": self.hashes,
            "data_cap": len(self.data), "keys_cap": keys_cap, "hashes_cap": hashes_cap,
            "rows": self.rows, "events": self.events})
        for name, column in zip(("data_at", "data_len", "key_at", "key_len", "hash_at", "hash_len", "sizes"),
                                self.columns):
            setattr(self.c, name, ffi.from_buffer("uint32_t[]", column, require_writable=True))

    def table(self, key_table):
        c = self.c
        n = c.n_entries
        for column in self.columns:
            del column[n:]
        data_at, data_len, key_at, key_len, hash_at, hash_len, sizes = self.columns
        out = EntryTable()
        out.count = n
        out.data = memoryview(ffi.buffer(self.data, c.data_used))  # the C buffer itself: no copy
        out.data_at, out.data_len = data_at, data_len
        out.keys, out.key_at, out.key_len = ffi.buffer(self.keys, c.keys_used)[:], key_at, key_len
        if c.n_aggregates:
            out.hashes, out.hash_at, out.hash_len = ffi.buffer(self.hashes, c.hashes_used)[:], hash_at, hash_len
        else:
            out.hashes = out.hash_at = out.hash_len = None
        out.events = _entry_events(ffi.unpack(self.rows, ROW * n), ffi.unpack(self.events, self.count),
                                   key_table)
        out.sizes = sizes
        out.keyless = out.pool = None
        return out


def _entry_events(rows, events, key_table):
    """Per entry: its record's event, or for an aggregate its records' AggregateEvents."""
    shard_ids, shards = key_table.shard_ids, key_table.shards
    out = []
    add = out.append
    for at in range(0, len(rows), ROW):
        aggregate, start, taken, key = rows[at:at + ROW]
        if aggregate:
            carried = AggregateEvents(events[start:start + taken])
            carried.shard_id = shard_ids[shards[key]]
            add(carried)
        else:
            add(events[start])
    return out

