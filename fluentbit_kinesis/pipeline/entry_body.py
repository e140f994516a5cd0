"""The PutRecords body of some entries of an EntryTable, by index.

Until entry_kernels.body_at is native, the entries' bytes are gathered here
with C-level slicing and joins (no Python frame per entry) and handed to the
one-pass C encoder (request_body.encode, csrc/fastjson_body.c); entries with
explicit hash keys (KPL aggregates: few per request) and keys that are not
ASCII go to body_at, the reference. The same bytes either way
(tests/pipeline/test_entry_table.py)."""
from array import array
from operator import add

from . import request_body
from .entry_kernels import body_at


def body(stream_field, table, indices):
    """The body of the entries at `indices` (in that order)."""
    built = None
    if request_body.AVAILABLE and table.hashes is None and len(indices):
        built = _native(stream_field, table, indices)
    return built if built is not None else body_at(stream_field, table, indices)


def gather(buffer, at, lengths, indices):
    """(the bytes of the entries at `indices` of a column, one after the
    other; their lengths, array('I'))."""
    view = memoryview(buffer)
    starts = list(map(at.__getitem__, indices))
    lens = array("I", map(lengths.__getitem__, indices))
    return b"".join(map(view.__getitem__, map(slice, starts, map(add, starts, lens)))), lens


def _native(stream_field, table, indices):
    keys, key_lens = gather(table.keys, table.key_at, table.key_len, indices)
    if not keys.isascii():
        return None
    data, data_lens = gather(table.data, table.data_at, table.data_len, indices)
    return request_body.encode(stream_field, data, data_lens, keys, key_lens)
