"""Aggregator.pack's per-record part in C (csrc/fastjson_kpl*.c, issue 18).

What is per chunk or per key stays here: each distinct partition key is
routed once (shard, hash key), the keyless keys and the turn come from the
Aggregator. The records cross as one concatenated data buffer, their
lengths and their key ids (gathered with C-level map, join and dict, no
Python frame per record); C does the accounting, the open aggregate per
shard, the records sent alone and every aggregate's bytes, and answers
rows this module turns into the same entries `Aggregator._pack_python` makes.
`pack` returns None on anything unusual (a key that is not a str, data that
is not bytes, a negative limit, the module not built): the reference runs.
"""
from array import array
from itertools import compress, count, repeat
from operator import is_, itemgetter, not_

from .keys import RandomKey
from .kpl import AGGREGATE_KEY, AggregateEvents

try:
    from .._fastjson import ffi, lib
except ImportError:  # not compiled: the Python reference only
    ffi = lib = None

AVAILABLE = lib is not None and hasattr(lib, "fj_kpl_pack")
ROW = 6  # FJ_KPL_ENTRY: aggregate?, first, count, key, offset, length
_BIG = 1 << 63  # a limit or skip past any size: as good as infinite
_data, _key, _event = itemgetter(0), itemgetter(1), itemgetter(2)

if AVAILABLE:
    _alloc = ffi.new_allocator(should_clear_after_alloc=False)


def pack(shaped, keyless, route, turn, limit, skip):
    """(entries, how many records took a keyless key), or None: the caller
    runs the reference. keyless: (shard, key) per open shard; route: key ->
    (shard or None, hash); turn: keyless records taken before this chunk."""
    if not AVAILABLE or not shaped or not keyless or limit < 0 or skip < 0:
        return None
    datas = list(map(_data, shaped))
    try:
        data = b"".join(datas)
        data_lens = array("I", map(len, datas))
    except (TypeError, OverflowError):
        return None
    keys = list(map(_key, shaped))
    records = _record_keys(keys)
    if records is None:
        return None
    keyed, rec_keys, flags, keyless_count = records
    table = _key_table(keyed, keyless, route)
    if table is None:
        return None
    rows, positions, blob = _run(data, data_lens, rec_keys, flags, table, turn % len(keyless),
                                 min(limit, _BIG), min(skip, _BIG), len(shaped))
    if rows is None:
        return None
    return _entries(rows, positions, blob, datas, list(map(_event, shaped)), table), keyless_count


def _record_keys(keys):
    """(distinct keys of their own in first-use order, each record's key id
    or NULL, keyless flags or NULL, how many are keyless), or None."""
    types = list(map(type, keys))
    keyless = types.count(RandomKey)
    if keyless == len(keys):  # no partition key read: every record takes the shards in turn
        return {}, ffi.NULL, ffi.NULL, keyless
    if types.count(str) + keyless != len(keys):
        return None
    if keyless:
        flags = bytes(map(is_, types, repeat(RandomKey)))
        keyed = dict.fromkeys(compress(keys, map(not_, flags)))
        ids = dict(zip(keyed, count()))
        rec_keys = array("I", map(ids.get, keys, repeat(0)))  # a keyless record's id is not read
        return keyed, rec_keys, flags, keyless
    keyed = dict.fromkeys(keys)
    ids = dict(zip(keyed, count()))
    return keyed, array("I", map(ids.__getitem__, keys)), ffi.NULL, 0


class _Table:
    """The key table C reads: the keys of their own, then one keyless key
    per shard; each key's shard index (-1: a gap) and hash key text."""
    __slots__ = ("keys", "shards", "hash_keys", "shard_ids", "keyless_base", "n_keyless")

    def __init__(self, keyless):
        self.keys = []
        self.shards = []
        self.hash_keys = []
        self.shard_ids = [shard.shard_id for shard, _key in keyless]
        self.n_keyless = len(keyless)


def _key_table(keyed, keyless, route):
    if not keyed.keys().isdisjoint([key for _shard, key in keyless]):
        return None  # a record's own key is a keyless key: the reference shares its table entry
    table = _Table(keyless)
    index = {shard_id: i for i, shard_id in enumerate(table.shard_ids)}
    for key in keyed:
        shard, hash_key = route(key)
        table.keys.append(key)
        if shard is None:  # a gap in the map: its records go alone
            table.shards.append(-1)
            table.hash_keys.append("")
            continue
        at = index.get(shard.shard_id)
        if at is None:  # a shard of a newer map than `keyless` (read meanwhile)
            at = index[shard.shard_id] = len(table.shard_ids)
            table.shard_ids.append(shard.shard_id)
        table.shards.append(at)
        # an aggregate's hash key: its first record's hash, never the shard's
        # EndingHashKey (moto answers that with HTTP 500), as _Builder
        table.hash_keys.append(str(hash_key if hash_key != shard.end else shard.start))
    table.keyless_base = len(table.keys)
    for at, (shard, key) in enumerate(keyless):
        table.keys.append(key)
        table.shards.append(at)
        table.hash_keys.append(str(shard.start))
    return table


def _encoded(texts):
    """(UTF-8 bytes of the texts concatenated, their lengths), or None."""
    joined = "".join(texts)
    if joined.isascii():
        return joined.encode("ascii"), array("I", map(len, texts))
    try:
        encoded = [text.encode("utf-8") for text in texts]
    except UnicodeEncodeError:  # a lone surrogate: the reference says what it makes of it
        return None
    return b"".join(encoded), array("I", map(len, encoded))


def _run(data, data_lens, rec_keys, flags, table, turn, limit, skip, n):
    """fj_kpl_pack: (its rows, the aggregates' records, the aggregates'
    bytes), or (None, None, None) when it declines."""
    keys = _encoded(table.keys)
    if keys is None:
        return None, None, None
    key_bytes, key_lens = keys
    hash_bytes = "".join(table.hash_keys).encode("ascii")
    keep = []  # what the input's pointers point into, alive until the call returns
    buf = _buffers(keep)
    arguments = {
        "data": buf(data), "data_size": len(data), "data_lens": buf(data_lens, "uint32_t[]"), "n": n,
        "rec_keys": buf(rec_keys, "uint32_t[]") if rec_keys else ffi.NULL,
        "keyless": buf(flags) if flags else ffi.NULL,
        "key_bytes": buf(key_bytes), "key_bytes_size": len(key_bytes),
        "key_lens": buf(key_lens, "uint32_t[]"), "key_shards": buf(array("i", table.shards), "int32_t[]"),
        "hash_bytes": buf(hash_bytes), "hash_bytes_size": len(hash_bytes),
        "hash_lens": buf(array("I", map(len, table.hash_keys)), "uint32_t[]"),
        "n_keys": len(table.keys), "keyless_base": table.keyless_base, "n_keyless": table.n_keyless,
        "n_shards": len(table.shard_ids), "turn": turn, "limit": limit, "skip": skip,
    }
    given = ffi.new("struct fj_kpl_input *", arguments)
    rows = _alloc("uint32_t[]", ROW * n)
    positions = _alloc("uint32_t[]", n)
    used, n_rows = ffi.new("size_t *"), ffi.new("size_t *")
    cap = len(data) + 24 * n + 2 * len(key_bytes) + 4096
    for _attempt in range(2):  # the first guess is roomy; else C said exactly how much
        out = _alloc("uint8_t[]", cap)
        rc = lib.fj_kpl_pack(given, out, cap, used, rows, n_rows, positions)
        if rc != -2:  # FJ_NEED_ROOM
            break
        cap = used[0]
    if rc != 0:
        return None, None, None
    return ffi.unpack(rows, ROW * n_rows[0]), ffi.unpack(positions, n), ffi.buffer(out, used[0])


def _buffers(keep):
    def buf(obj, ctype="uint8_t[]"):
        if not len(obj):
            return ffi.NULL
        view = ffi.from_buffer(ctype, obj)  # keeps obj alive; the struct's pointer would not
        keep.append(view)
        return view
    return buf


def _entries(rows, positions, blob, datas, events, table):
    """The rows as Aggregator._pack_python's entries."""
    keys, shards, hash_keys, shard_ids = table.keys, table.shards, table.hash_keys, table.shard_ids
    out = []
    add = out.append
    for at in range(0, len(rows), ROW):
        aggregate, first, taken, key, offset, length = rows[at:at + ROW]
        if aggregate:
            carried = AggregateEvents(map(events.__getitem__, positions[first:first + taken]))
            carried.shard_id = shard_ids[shards[key]]
            add((blob[offset:offset + length], AGGREGATE_KEY, hash_keys[key], carried))
        else:
            add((datas[first], keys[key], None, events[first]))
    return out
