"""ShardLimiter.plan's, .waits' and .answered's per-shard loops in C
(csrc/fastjson_pace.c), one call per request over a PaceTable's rows: no
Python step per shard but the handing over (over a flush's LaneColumns:
pace_lanes.py, none at all). Each returns None to decline
(the module not built, lanes that are not uint32 buffers as Lanes gives, a
shard twice, numbers out of range), having changed nothing: ShardLimiter
then runs the reference, ShardPace's methods on the same rows, which the
kernel equals float for float (tests/delivery/test_pace_native.py)."""
from array import array
from functools import partial
from itertools import accumulate, chain, repeat
from operator import attrgetter

from ..pipeline.entry_kernels_native import ffi, lib  # the native module, when built (delivery imports it via pipeline)
from . import shard_pace as sp
from .batching import MIN_PART, UNKNOWN

AVAILABLE = lib is not None and hasattr(lib, "fj_pace_plan")
FJ_DECLINE = -1
_format = attrgetter("format")
_EXACT_NOW = 2.0 ** 53  # a clock's int converts to the same double in C as in Python's arithmetic


def _struct(table, max_shards):
    """The table's fj_pace_table (pacing's constants copied once), its room brought up to date."""
    t = getattr(table, "native", None)
    if t is None:
        t = table.native = ffi.new("struct fj_pace_table *")
        for name, value in (("limit_records", sp.LIMIT_RECORDS), ("limit_bytes", sp.LIMIT_BYTES),
                            ("ceiling", sp.CEILING), ("burst", sp.BURST), ("min_share", sp.MIN_SHARE),
                            ("unknown_ceiling", sp.UNKNOWN_CEILING), ("cooldown", sp.COOLDOWN),
                            ("window", sp.WINDOW), ("keep", 1 - sp.TOLERATED), ("min_cut", sp.MIN_CUT),
                            ("max_cut", sp.MAX_CUT), ("probe_base", sp.PROBE[0]), ("probe_quiet", sp.PROBE[1]),
                            ("batch", sp.BATCH), ("exact", sp.EXACT),
                            ("min_records", sp.LIMIT_RECORDS * sp.MIN_SHARE),
                            ("min_bytes", sp.LIMIT_BYTES * sp.MIN_SHARE), ("min_part", MIN_PART)):
            setattr(t, name, value)
    if table.unpin is None:  # first use, or the arrays grew: held until they grow again
        d = ffi.from_buffer("double[]", table.d, require_writable=True)
        q = ffi.from_buffer("int64_t[]", table.q, require_writable=True)
        t.d, t.q, t.d_n, t.q_n, t.capacity = d, q, len(table.d), len(table.q), table.capacity
        table.unpin = partial(_unpin, t, d, q)
    t.live, t.max_shards = len(table.slots), max_shards
    return t


def _unpin(t, d, q):
    t.d = t.q = ffi.NULL
    ffi.release(d)
    ffi.release(q)


def _ready(table, names, now, max_shards):
    """Whether the kernel can take these shards (`names`: distinct) and this
    clock; room made for those met first."""
    if type(max_shards) is not int or not 0 < max_shards < 2 ** 31:
        return False
    if type(now) is not float and not (type(now) is int and abs(now) < _EXACT_NOW):
        return False
    table.reserve(min(max_shards, len(table.slots) + len(names)))
    return True


def _unknown(names):
    return names.index(UNKNOWN) if UNKNOWN in names else -1


def _call(table, max_shards, kernel, *args):
    """kernel(struct, *args) on the table's arrays."""
    return kernel(_struct(table, max_shards), *args)


def _made(table, names, slots, created, info):
    """The shards the kernel made (after emptying the table, if it did) into the table's dicts."""
    if info[2]:
        table.clear()
    for k in range(info[1], info[0]):
        table.register(names[created[k]], slots[created[k]])


def plan(table, lanes, now, max_count, max_bytes, max_shards):
    """ShardLimiter.plan's dict for (shard, sizes) lanes, or None."""
    if not AVAILABLE or type(max_count) is not int or type(max_bytes) is not int:
        return None
    planned = _over_lanes(table, lanes, now, max_shards, _plan, now, max_count, max_bytes, max_shards)
    if not planned:
        return planned
    names = [shard for shard, _ in lanes]
    return dict(zip(map(names.__getitem__, planned[0]), planned[1]))


def waits(table, lanes, now, max_shards):
    """ShardLimiter.waits' dict for (shard, sizes) lanes, or None."""
    return _over_lanes(table, lanes, now, max_shards, _waits, now, max_shards) if AVAILABLE else None


def _over_lanes(table, lanes, now, max_shards, kernel, *args):
    """kernel(table, names, sizes, sizes_n, bounds, order, slots, unknown, *args)
    over (shard, sizes) lanes packed as columns; {} for no lanes; None to decline."""
    if not lanes:
        return {}
    try:
        names, sizes = zip(*lanes)
        views = list(map(memoryview, sizes))
        if set(map(_format, views)) != {"I"}:
            return None
        joined, lens = b"".join(views), list(map(len, views))
    except (TypeError, ValueError, BufferError):  # not (shard, buffer) pairs, or not contiguous
        return None
    if len(joined) != 4 * sum(lens) or len(set(names)) != len(names) or not _ready(table, names, now, max_shards):
        return None
    starts = list(accumulate(lens, initial=0))
    slots = ffi.new("int32_t[]", list(map(table.slots.get, names, repeat(-1))))
    try:
        bounds = ffi.new("uint32_t[]", list(chain.from_iterable(zip(starts, starts[1:]))))
    except OverflowError:  # a lane of 2**32 entries
        return None
    return kernel(table, names, ffi.from_buffer("uint32_t[]", joined), len(joined) // 4, bounds, None,
                  slots, _unknown(names), *args)


def _lane_order(order, n):
    """The request's lanes for the kernel (order None: every one of n)."""
    return ffi.new("uint32_t[]", list(range(n))) if order is None else ffi.from_buffer("uint32_t[]", order)


def _waits(table, names, sizes, sizes_n, bounds, order, slots, unknown, now, max_shards):
    """fj_pace_waits over the lanes order[] (None: every one) of names[]; its dict, or None."""
    n = len(names) if order is None else len(order)
    out, created, info = ffi.new("double[]", n), ffi.new("uint32_t[]", n), ffi.new("size_t[3]")
    rc = _call(table, max_shards, lib.fj_pace_waits, now, sizes, sizes_n, bounds, len(names),
               _lane_order(order, n), n, slots, unknown, out, created, n, info)
    if rc == FJ_DECLINE:
        return None
    if rc < 0:
        raise RuntimeError(f"fj_pace_waits: {rc}")
    _made(table, names, slots, created, info)
    return dict(zip(names if order is None else map(names.__getitem__, order), ffi.unpack(out, n)))


def _plan(table, names, sizes, sizes_n, bounds, order, slots, unknown, now, max_count, max_bytes, max_shards):
    """fj_pace_plan over the lanes order[] (None: every one) of names[]: (the
    lanes that go, how many entries each gives), two array('I'), or None."""
    n = len(names) if order is None else len(order)
    info, counts, created = ffi.new("size_t[3]"), ffi.new("uint32_t[]", n), ffi.new("uint32_t[]", 3 * n)
    planned, planned_counts = array("I", bytes(4 * n)), array("I", bytes(4 * n))
    try:
        rc = _call(table, max_shards, lib.fj_pace_plan, now, sizes, sizes_n, bounds, len(names), _lane_order(order, n),
                   n, slots, unknown, max_count, max_bytes, counts, ffi.from_buffer("uint32_t[]", planned, True),
                   ffi.from_buffer("uint32_t[]", planned_counts, True), created, len(created), info)
    except OverflowError:  # limits beyond int64
        return None
    if rc == FJ_DECLINE:
        return None
    if rc < 0:
        raise RuntimeError(f"fj_pace_plan: {rc}")
    _made(table, names, slots, created, info)
    del planned[rc:], planned_counts[rc:]
    return planned, planned_counts


def answered(table, counts, now, max_shards):
    """ShardLimiter.answered's work (how many shares it cut) for shard ->
    (acked, their bytes, throttled), or None."""
    names = tuple(counts)
    if not AVAILABLE or not _ready(table, names, now, max_shards):
        return None
    try:  # the reference counts what was acknowledged from 0 up
        values = (array("I", [v[0] if v[0] > 0 else 0 for v in counts.values()]),
                  array("Q", [v[1] if v[1] > 0 else 0 for v in counts.values()]),
                  array("I", [v[2] for v in counts.values()]))
    except (TypeError, OverflowError, IndexError):  # not ints of those ranges
        return None
    n = len(names)
    if not n:
        return 0
    slots = ffi.new("int32_t[]", list(map(table.slots.get, names, repeat(-1))))
    created, info = ffi.new("uint32_t[]", n), ffi.new("size_t[3]")
    rc = _call(table, max_shards, lib.fj_pace_answered, now, ffi.NULL, n, n, slots, _unknown(names),
               ffi.from_buffer("uint32_t[]", values[0]), ffi.from_buffer("uint64_t[]", values[1]),
               ffi.from_buffer("uint32_t[]", values[2]), created, n, info)
    if rc == FJ_DECLINE:
        return None
    if rc < 0:
        raise RuntimeError(f"fj_pace_answered: {rc}")
    _made(table, names, slots, created, info)
    return rc
