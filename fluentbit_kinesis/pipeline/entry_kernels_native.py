"""The entry kernels in C (csrc/fastjson_entries.c) over an EntryTable's
columns, handed over as they are (ffi.from_buffer on the bytes and arrays:
no Python work per entry, each result array allocated once per call). Each
function returns None to decline (the module not built, a column not of the
contract's type or shorter than the table, a key that is not UTF-8, ...):
entry_kernels.py then runs its Python reference, which the results equal
(tests/pipeline/test_entry_kernels.py)."""
import threading
from array import array
from operator import is_

from . import scratch

try:
    from .._fastjson import ffi, lib
except ImportError:  # not compiled: the references only
    ffi = lib = None

# the C side reads uint32/int32/uint64 items: the arrays' item sizes must be those
AVAILABLE = (lib is not None and hasattr(lib, "fj_shard_indices")
             and (array("I").itemsize, array("i").itemsize, array("Q").itemsize) == (4, 4, 8))
HASH_MAX = 2 ** 128 - 1
LOW = 2 ** 64 - 1
FJ_NEED_ROOM = -2

MEMO_BYTES = 4096 * 96  # fj_shard_indices's key -> hash memo: 4,096 sets of two keys, per thread
_memos = threading.local()  # a thread's own: flush threads run the kernel at once, the GIL released
_lines = threading.local()  # a thread's buffer for ledger lines (flush threads record at once)
_bitmaps = threading.local()  # a thread's bitmap for sort_indices

if AVAILABLE:
    _alloc = ffi.new_allocator(should_clear_after_alloc=False)


class _Decline(Exception):
    pass


def _u32(column, count):
    """An array('I') column of at least `count` items as a uint32_t pointer."""
    if type(column) is not array or column.typecode != "I" or len(column) < count:
        raise _Decline
    return ffi.from_buffer("uint32_t[]", column)


def _bytes(buffer):
    """A bytes-like buffer (bytes, bytearray, a contiguous memoryview of bytes) as a uint8_t pointer."""
    if not (isinstance(buffer, (bytes, bytearray))
            or (isinstance(buffer, memoryview) and buffer.itemsize == 1 and buffer.c_contiguous)):
        raise _Decline
    return ffi.from_buffer("uint8_t[]", buffer)


def _hash_columns(table):
    """(hashes, size, hash_at, hash_len) for C: NULLs when no entry has one."""
    if table.hashes is None:
        return ffi.NULL, 0, ffi.NULL, ffi.NULL
    return (_bytes(table.hashes), len(table.hashes), _u32(table.hash_at, table.count),
            _u32(table.hash_len, table.count))


def packed_bounds(bounds):
    """The shard bounds as C reads them (per shard: start high, start low, end
    high, end low, uint64), made once and kept on the ShardBounds; None when
    some bound is not an int from 0 to 2**128 - 1."""
    if bounds.packed is None:
        starts, ends, rows = bounds.starts, bounds.ends, array("Q")
        if len(starts) == len(ends) and all(type(v) is int and 0 <= v <= HASH_MAX for v in starts + ends):
            for start, end in zip(starts, ends):  # per shard, once per shard map
                rows.extend((start >> 64, start & LOW, end >> 64, end & LOW))
            bounds.packed = rows
        else:
            bounds.packed = False
    return bounds.packed if bounds.packed is not False else None


def shard_indices(table, bounds):
    """entry_kernels.shard_indices_reference's array('i'), or None."""
    packed = packed_bounds(bounds) if AVAILABLE else None
    if packed is None:
        return None
    count = table.count
    out = array("i", [0]) * count
    memo = getattr(_memos, "memo", None)
    if memo is None:
        memo = _memos.memo = ffi.new("uint8_t[]", MEMO_BYTES)  # zeroed: every slot empty
    try:
        rc = lib.fj_shard_indices(_bytes(table.keys), len(table.keys), _u32(table.key_at, count),
                                  _u32(table.key_len, count), *_hash_columns(table), count,
                                  ffi.from_buffer("uint64_t[]", packed), len(bounds.starts),
                                  ffi.from_buffer("int32_t[]", out, require_writable=True), memo, MEMO_BYTES)
    except _Decline:
        return None
    return out if rc == 0 else None


def group(shards, lanes):
    """entry_kernels.group_reference's (order, first), or None."""
    if not AVAILABLE or type(shards) is not array or shards.typecode != "i" or type(lanes) is not int or lanes < 0:
        return None
    order, first = array("I", [0]) * len(shards), array("I", [0]) * (lanes + 2)
    rc = lib.fj_group(ffi.from_buffer("int32_t[]", shards), len(shards), lanes,
                      ffi.from_buffer("uint32_t[]", order, require_writable=True),
                      ffi.from_buffer("uint32_t[]", first, require_writable=True))
    return (order, first) if rc == 0 else None


def take_lanes(order, sizes, bounds, ns, counts):
    """Lane ns[k] gives counts[k] entries from its head (batching.Lanes.take):
    (the entries, array('I'), each lane's bytes, array('Q'), the lanes it
    emptied, array('I')), bounds moved in place; or None, bounds as they were."""
    if not AVAILABLE or not all(type(a) is array and a.typecode == "I" for a in (order, sizes, bounds, ns, counts)) \
            or len(sizes) != len(order) or len(ns) != len(counts):
        return None
    group, taken, emptied = array("I", [0]) * sum(counts), array("Q", [0]) * len(ns), array("I", [0]) * len(ns)
    if not group:
        return group, taken, array("I")
    emptied_n = ffi.new("size_t *")
    rc = lib.fj_take_lanes(ffi.from_buffer("uint32_t[]", order), ffi.from_buffer("uint32_t[]", sizes), len(order),
                           ffi.from_buffer("uint32_t[]", bounds, require_writable=True), len(bounds) // 2,
                           ffi.from_buffer("uint32_t[]", ns), ffi.from_buffer("uint32_t[]", counts), len(ns),
                           ffi.from_buffer("uint32_t[]", group, require_writable=True),
                           ffi.from_buffer("uint64_t[]", taken, require_writable=True),
                           ffi.from_buffer("uint32_t[]", emptied, require_writable=True), emptied_n)
    if rc != 0:
        return None
    del emptied[emptied_n[0]:]
    return group, taken, emptied


def body_at(stream_field, table, indices):
    """entry_kernels.body_at_reference's bytes, or None."""
    view = body_view(stream_field, table, indices)
    if view is None:
        return None
    with view as found:
        return found[:]


def body_view(stream_field, table, indices):
    """The same bytes as a buffer over the C code's output, or None: a
    context whose block the buffer is valid in (a request's body is hashed
    and sent from it, not copied out)."""
    if not AVAILABLE or not isinstance(stream_field, bytes):
        return None
    try:
        if type(indices) is not array or indices.typecode != "I":
            indices = array("I", indices)
        args = (ffi.from_buffer("uint8_t[]", stream_field), len(stream_field), *_table_args(table),
                ffi.from_buffer("uint32_t[]", indices), len(indices))
    except (_Decline, TypeError, OverflowError):  # indices that are not uint32: the reference's
        return None
    used = ffi.new("size_t *")
    if lib.fj_body_at(*args, ffi.NULL, 0, used) != FJ_NEED_ROOM:  # asks the room it needs
        return None
    buffers = scratch.Buffers(ffi, _alloc)
    out = buffers.new("uint8_t[]", used[0])
    if lib.fj_body_at(*args, out, used[0], used) != 0:
        buffers.__exit__()
        return None
    buffers.wrote(out, used[0])
    return _BodyView(buffers, ffi.buffer(out, used[0]))


class _BodyView:
    """body_view's context (a class: a generator's context costs a dozen
    Python steps a request): the buffer, its scratch given back at the end."""
    __slots__ = ("buffers", "view")

    def __init__(self, buffers, view):
        self.buffers = buffers
        self.view = view

    def __enter__(self):
        return self.view

    def __exit__(self, *_exc):
        self.buffers.__exit__()


def _table_args(table):
    """The table's columns as fj_body_at reads them: the same for every
    request of a flush, so made once and kept on the table while its columns
    are the same objects (each request saves a score of Python steps; the
    pointers hold the columns, so none of them can grow meanwhile)."""
    columns = (table.data, table.data_at, table.data_len, table.keys, table.key_at, table.key_len,
               table.hashes, table.hash_at, table.hash_len, table.count)
    kept = getattr(table, "native", None)
    if kept is None or not all(map(is_, kept[0], columns)):  # the same objects (an equal copy may change apart)
        count = table.count
        kept = table.native = (columns, (
            _bytes(table.data), len(table.data), _u32(table.data_at, count), _u32(table.data_len, count),
            _bytes(table.keys), len(table.keys), _u32(table.key_at, count), _u32(table.key_len, count),
            *_hash_columns(table), count))
    return kept[1]


def _indices(indices):
    """An array('I') of indices as a uint32_t pointer (anything else declines)."""
    if type(indices) is not array or indices.typecode != "I":
        raise _Decline
    return ffi.from_buffer("uint32_t[]", indices)


def sum_at(column, indices):
    """entry_kernels.sum_at_reference's int, or None."""
    if not AVAILABLE:
        return None
    total = ffi.new("uint64_t *")
    try:
        rc = lib.fj_sum_at(_u32(column, 0), len(column), _indices(indices), len(indices), total)
    except _Decline:
        return None
    return total[0] if rc == 0 else None


def gather_at(column, indices):
    """array('I') of column[i] for each i of `indices`, or None."""
    if not AVAILABLE:
        return None
    out = array("I", [0]) * len(indices)
    try:
        rc = lib.fj_gather_at(_u32(column, 0), len(column), _indices(indices), len(indices),
                              ffi.from_buffer("uint32_t[]", out, require_writable=True))
    except _Decline:
        return None
    return out if rc == 0 else None


def sort_indices(indices, bound):
    """Sorts an array('I') of distinct indices below `bound` in place, in one
    kernel call (a bitmap of this thread's); False, nothing changed, when it declines."""
    if not AVAILABLE or type(indices) is not array or indices.typecode != "I":
        return False
    words = (bound + 63) // 64
    bits = getattr(_bitmaps, "bits", None)
    if bits is None or len(bits) < words:
        bits = _bitmaps.bits = ffi.new("uint64_t[]", max(words, 1024))  # zeroed; the kernel leaves it so
    return lib.fj_sort_indices(ffi.from_buffer("uint32_t[]", indices, require_writable=True), len(indices),
                               bound, bits, len(bits)) == 0


def ledger_line(indices, key, when):
    """delivery/ledger.py's line (bytes) saying the events `indices` (a
    non-empty array('I')) of chunk `key` (bytes) were done at `when` (whole
    seconds since the epoch), or None: one kernel call, no Python step per index."""
    if not AVAILABLE or not indices or not 0 <= when < 2 ** 63:
        return None
    try:
        args = (_indices(indices), len(indices), _bytes(key), len(key), when)
    except _Decline:
        return None
    room = getattr(_lines, "room", None)
    if room is None:
        room = _lines.room = [ffi.new("uint8_t[]", 4096), ffi.new("size_t *")]
    out, used = room
    rc = lib.fj_ledger_line(*args, out, len(out), used)
    if rc == FJ_NEED_ROOM:  # a bitmap longer than any so far on this thread
        out = room[0] = ffi.new("uint8_t[]", used[0])
        rc = lib.fj_ledger_line(*args, out, len(out), used)
    return ffi.buffer(out, used[0])[:] if rc == 0 else None


def table_columns(records, count, chunk, pool, max_key, keyless=None):
    """The fast path's record table (fj_convert's 5 uint32 per record, a
    memoryview) as an EntryTable's columns: (data_at, data_len, keys, key_at,
    key_len, sizes, longest data, keys made up). A record's key: its own span
    in `chunk` (bytes-like, at most max_key bytes), or where it has none or
    chunk is None, the next of `pool` (PartitionKeys.pool_for); `keyless`
    (a bytearray of count, or None) flags those. None: a record not
    converted cleanly, or a key too long or not UTF-8."""
    if not AVAILABLE or len(records) < 5 * count or (keyless is not None and len(keyless) < count):
        return None
    pool_text, pool_count, key_size, start = pool
    columns = [array("I", [0]) * count for _ in range(5)]
    keys_cap = (len(chunk) if chunk is not None else 0) + key_size * count
    buffers = scratch.Buffers(ffi, _alloc)
    with buffers as new:
        keys = new("uint8_t[]", max(1, keys_cap))
        source = ffi.NULL if chunk is None else ffi.from_buffer("uint8_t[]", chunk)
        given = ffi.new("struct fj_table_keys *", (source, ffi.from_buffer("uint8_t[]", pool_text),
                                                    0 if chunk is None else len(chunk), max_key, pool_count,
                                                    start, key_size))
        out = ffi.new("struct fj_table_out *", (*(ffi.from_buffer("uint32_t[]", c, require_writable=True)
                                                   for c in columns), keys, keys_cap))
        flags = ffi.NULL if keyless is None else ffi.from_buffer("uint8_t[]", keyless, require_writable=True)
        out.keyless = flags  # the struct does not keep `flags` alive: the name does, through the call
        rc = lib.fj_table_columns(ffi.from_buffer("uint32_t[]", records), count, given, out)
        buffers.wrote(keys, out.keys_used)
        if rc != 0:
            return None
        data_at, data_len, key_at, key_len, sizes = columns
        return (data_at, data_len, ffi.buffer(keys, out.keys_used)[:], key_at, key_len, sizes,
                out.max_data, out.made_up)
