"""Operations over an EntryTable's columns that run once per entry: each
entry's shard, grouping entries by shard, a PutRecords body from a list of
entry indices; and per request, a column summed or gathered at a request's
indices. Each runs natively when fluentbit_kinesis._fastjson is built
(entry_kernels_native.py, csrc/fastjson_entries.c, csrc/fastjson_indices.c), else, or when the native
version declines (None) what it is unsure of, its Python reference here
(*_reference): the same results (tests/pipeline/test_entry_kernels.py)."""
import hashlib
from array import array
from bisect import bisect_right
from contextlib import nullcontext

from . import entry_kernels_native as native
from .entry_table import EntryTable
from .request_body import python_body

NATIVE = native.AVAILABLE  # the native kernels are there (else the references run)


class ShardBounds:
    """The open shards' hash key ranges, sorted by start (ints up to 2**128 - 1),
    prepared once per shard map (not changed after: the native form is kept)."""

    def __init__(self, starts, ends):
        self.starts, self.ends = list(starts), list(ends)
        self.packed = None  # their native form, made on first use (entry_kernels_native.packed_bounds)
        self.pools = {}  # pool bytes -> the shard of each of its keys (pool_shards)

    def __len__(self):
        return len(self.starts)


def shard_indices(table, bounds):
    """shard_indices_reference's array: read off the pool's shards when every
    key is the pool's next (no hash per entry), else natively when it can."""
    if table.pool is not None and table.hashes is None:
        return pooled_shard_indices(table.pool, table.count, bounds)
    found = native.shard_indices(table, bounds)
    return found if found is not None else shard_indices_reference(table, bounds)


MAX_POOLS = 8  # pools whose shards a map keeps (one per output instance writing the stream)


def pooled_shard_indices(pool, count, bounds):
    """The shards of `count` entries keyed by the pool's keys in turn
    (PartitionKeys.pool_for: pool bytes, keys in it, bytes a key, the first):
    the pool's shards, each key's found once per shard map, rotated to the
    first and repeated, in C-level array operations."""
    text, keys, size, first = pool
    shards = bounds.pools.get(text)
    if shards is None:
        if len(bounds.pools) >= MAX_POOLS:
            bounds.pools.clear()
        shards = bounds.pools[text] = shard_indices(_pool_table(text, keys, size), bounds)
    turn = shards[first:] + shards[:first]
    return (turn * (count // keys + 1))[:count]


def _pool_table(text, keys, size):
    """An EntryTable of the pool's keys (no data), to find their shards."""
    empty = array("I", [0]) * keys
    return EntryTable.from_columns(b"", empty, empty, text, array("I", range(0, keys * size, size)),
                                   array("I", [size]) * keys, empty)


def shard_indices_reference(table, bounds):
    """array('i'): per entry, the index in `bounds` of the shard its hash falls in,
    -1 for none (a gap, no shards, an explicit hash key that is not a decimal
    number up to 2**128 - 1). The hash: the explicit hash key when the entry has
    one, else MD5 of the partition key's UTF-8 bytes, big-endian."""
    out = array("i")
    for i in range(table.count):
        hash_key = _hash_of(table, i)
        j = bisect_right(bounds.starts, hash_key) - 1 if hash_key is not None else -1
        out.append(j if j >= 0 and hash_key <= bounds.ends[j] else -1)
    return out


def _hash_of(table, i):
    explicit = table.hash_of(i)
    if explicit is None:
        at = table.key_at[i]
        return int.from_bytes(hashlib.md5(table.keys[at:at + table.key_len[i]]).digest(), "big")
    if not explicit.isdigit() or not explicit.isascii() or int(explicit) >= 2 ** 128:
        return None
    return int(explicit)


def group(shards, lanes):
    """group_reference's (order, first), natively when it can."""
    found = native.group(shards, lanes)
    return found if found is not None else group_reference(shards, lanes)


def group_reference(shards, lanes):
    """Entries grouped by lane, stable: (order array('I'), first array('I') of
    lanes + 2 items). Lane of entry i: shards[i], or `lanes` (the last, for
    entries without a shard) when shards[i] < 0; lane L holds
    order[first[L]:first[L + 1]], in entry order."""
    members = [[] for _ in range(lanes + 1)]
    for i, shard in enumerate(shards):
        members[shard if shard >= 0 else lanes].append(i)
    order, first = array("I"), array("I", [0])
    for lane in members:
        order.extend(lane)
        first.append(len(order))
    return order, first


def body_at(stream_field, table, indices):
    """body_at_reference's bytes, natively when it can."""
    found = native.body_at(stream_field, table, indices)
    return found if found is not None else body_at_reference(stream_field, table, indices)


def request_body(stream_field, table, indices):
    """body_at's bytes in a context, valid while its block runs: natively, a
    buffer over the C code's output (a request's bytes are not copied out of it)."""
    found = native.body_view(stream_field, table, indices)
    return found if found is not None else nullcontext(body_at_reference(stream_field, table, indices))


def body_at_reference(stream_field, table, indices):
    """The PutRecords body of the entries at `indices`, in that order: the same
    bytes as request_body.python_body of those entries."""
    return python_body(stream_field, [(table.data_of(i), table.key_of(i), table.hash_of(i), None)
                                      for i in indices])


def in_chunk_order(indices, bound):
    """Sorts distinct entry indices (an array('I'), each below `bound`) in
    place: a request's entries read front to back from the table's buffers,
    not in lane order, which jumps about them (a cache miss an entry)."""
    if not native.sort_indices(indices, bound):
        indices[:] = array("I", sorted(indices))


def sum_at(column, indices):
    """sum_at_reference's int, natively when it can (a request's bytes from table.sizes)."""
    found = native.sum_at(column, indices)
    return found if found is not None else sum_at_reference(column, indices)


def sum_at_reference(column, indices):
    """The sum of column[i] over the indices i."""
    return sum(map(column.__getitem__, indices))


def gather_at(column, indices):
    """array('I') of column[i] for each i of `indices` (an array('I') column), natively when it can."""
    found = native.gather_at(column, indices)
    return found if found is not None else array("I", map(column.__getitem__, indices))


def events_at(table, indices):
    """The events of the entries at `indices`, in order: an array('I') when
    every entry carries one event (the fast path's table: gathered natively),
    else a list of what each carries (an int, or a list of them)."""
    events = table.events
    if type(events) is array:
        return gather_at(events, indices)
    return list(map(events.__getitem__, indices))
