"""Pacing's kernel over a flush's lanes as columns (lane_columns.py), for
the usual request (no entries put back, no shard blocked): its plan and the
entries it plans taken from the heads of the lanes in one call
(fj_pace_take), its answer read from the RequestCounts that take made. With
256 shards a request takes a few entries from every lane, and each Python
step of a request costs about a microsecond on a busy machine (cold caches
after the wait for the answer): so the lanes' arrays, the kernel's scratch
and its outputs are pinned once per flush (the columns' `pinned`), and a
request costs a few steps, none per shard. Each call returns None to
decline, having changed nothing: ShardLimiter then plans with pace_native
or the reference (tests/delivery/test_pace_native.py compares them)."""
from array import array
from itertools import repeat

from .batching import UNKNOWN
from .lane_columns import RequestCounts
from .pace_native import AVAILABLE, FJ_DECLINE, _made, _plan, _ready, _struct, _unknown, _waits, ffi, lib

GROUP = 500  # entries a request holds at most (PutRecords): its room, made larger when asked


class _Pinned:
    """A LaneColumns' arrays as the kernel reads them, its scratch and its outputs (sliced per request)."""

    def __init__(self, columns):
        n = len(columns.names)
        self.entries, self.sizes, self.bounds = map(_u32, (columns.entries, columns.sizes, columns.bounds))
        self.counts, self.created, self.created_cap = ffi.new("uint32_t[]", n), ffi.new("uint32_t[]", 3 * n), 3 * n
        self.info, self.took, self.seen = ffi.new("size_t[3]"), ffi.new("size_t[2]"), ffi.new("uint8_t[]", n)
        self.planned, self.planned_counts, self.emptied = (array("I", bytes(4 * n)) for _ in range(3))
        self.taken = array("Q", bytes(8 * n))
        self.outputs = (_u32(self.planned), _u32(self.planned_counts), ffi.from_buffer("uint64_t[]", self.taken, True),
                        _u32(self.emptied))
        self.room(GROUP)

    def room(self, count):
        self.group = array("I", bytes(4 * count))
        self.group_out = _u32(self.group)


def _u32(column):
    return ffi.from_buffer("uint32_t[]", column, require_writable=True)


def _pinned(columns):
    if columns.pinned is None:  # none of the arrays grows: held as long as the columns
        columns.pinned = _Pinned(columns)
    return columns.pinned


def _slots(table, columns):
    """The columns' lanes' slots in the table (-1: none yet), remade when shards were made or forgotten since."""
    if columns.known != (table, table.generation, len(table.slots)):
        columns.slots = ffi.new("int32_t[]", list(map(table.slots.get, columns.names, repeat(-1))))
    return columns.slots


def _unknown_lane(names):
    return len(names) - 1 if names[-1] == UNKNOWN else _unknown(names)


def _after(table, columns, slots, pin, rc, kernel):
    """The shards the kernel made into the table; the slot cache current again."""
    if rc == FJ_DECLINE:
        return False
    if rc < 0:
        raise RuntimeError(f"{kernel}: {rc}")
    if pin.info[0]:
        _made(table, columns.names, slots, pin.created, pin.info)
    columns.known = (table, table.generation, len(table.slots))
    return True


def take(table, columns, now, max_count, max_bytes, max_shards):
    """One request from every lane of columns.order: (its entries, its
    RequestCounts, the lanes it emptied); () when no shard may send yet."""
    if not AVAILABLE or type(max_count) is not int or type(max_bytes) is not int or not 0 <= max_count < 2 ** 31:
        return None
    if not columns.order:
        return ()
    names = columns.names
    if not _ready(table, names, now, max_shards):
        return None
    pin = _pinned(columns)
    if max_count > len(pin.group):
        pin.room(max_count)
    slots, planned, planned_counts, taken, emptied = _slots(table, columns), *pin.outputs
    try:
        rc = lib.fj_pace_take(_struct(table, max_shards), now, pin.entries, pin.sizes, len(columns.sizes), pin.bounds,
                              len(names), ffi.from_buffer("uint32_t[]", columns.order), len(columns.order), slots,
                              _unknown_lane(names), max_count, max_bytes, pin.counts, planned, planned_counts,
                              pin.created, pin.created_cap, pin.info, pin.group_out, len(pin.group), taken, emptied,
                              pin.took, pin.seen)
    except OverflowError:  # max_bytes beyond int64
        return None
    if not _after(table, columns, slots, pin, rc, "fj_pace_take"):
        return None
    if not rc:
        return ()
    group, lanes = pin.group[:pin.took[0]], pin.planned[:rc]
    return group, RequestCounts(columns, lanes, pin.planned_counts[:rc], pin.taken[:rc]), pin.emptied[:pin.took[1]]


def answered(table, counts, now, max_shards):
    """ShardLimiter.answered for a RequestCounts: how many shares it cut, or None."""
    columns, n = counts.columns, len(counts.lanes)
    if not AVAILABLE or not _ready(table, columns.names, now, max_shards):
        return None
    if not n:
        return 0
    pin, slots = _pinned(columns), _slots(table, columns)
    rc = lib.fj_pace_answered(_struct(table, max_shards), now, ffi.from_buffer("uint32_t[]", counts.lanes), n,
                              len(columns.names), slots, _unknown_lane(columns.names),
                              ffi.from_buffer("uint32_t[]", counts.entries), ffi.from_buffer("uint64_t[]", counts.sizes),
                              ffi.from_buffer("uint32_t[]", counts.throttled), pin.created, pin.created_cap, pin.info)
    return rc if _after(table, columns, slots, pin, rc, "fj_pace_answered") else None


def plan(table, columns, now, max_count, max_bytes, max_shards):
    """ShardLimiter.plan's dict for the lanes of columns.order, or None."""
    if not AVAILABLE or type(max_count) is not int or type(max_bytes) is not int:
        return None
    planned = _over_columns(table, columns, now, max_shards, _plan, now, max_count, max_bytes, max_shards)
    return planned if not planned else dict(zip(map(columns.names.__getitem__, planned[0]), planned[1]))


def waits(table, columns, now, max_shards):
    """ShardLimiter.waits' dict for the lanes of columns.order, or None."""
    return _over_columns(table, columns, now, max_shards, _waits, now, max_shards) if AVAILABLE else None


def _over_columns(table, columns, now, max_shards, kernel, *args):
    """pace_native's kernel(...) over the columns' lanes, its slot cache brought up to date."""
    if not columns.order:
        return {}
    names = columns.names
    if not _ready(table, names, now, max_shards):
        return None
    pin = _pinned(columns)
    result = kernel(table, names, pin.sizes, len(columns.sizes), pin.bounds, columns.order,
                    _slots(table, columns), _unknown_lane(names), *args)
    columns.known = (table, table.generation, len(table.slots))
    return result
