"""A PutRecords request body from Kinesis entries (data bytes, partition
key, explicit hash key or None, ...): base64 of each record, its key, its
hash key, the entries' JSON.

`native_body` builds it in C in one pass (csrc/fastjson_body.c): the
entries cross as three concatenated buffers and their lengths, gathered with
C-level map and join, so no Python frame runs per entry. It returns None on
anything unusual (a key that is not ASCII, a value of another type, the
module not built); `python_body` is the reference and gives the same bytes
(tests/pipeline/test_request_body.py).
"""
import binascii
from operator import itemgetter

import orjson

from . import scratch

try:
    from .._fastjson import ffi, lib
except ImportError:  # not compiled: the Python body only
    ffi = lib = None

AVAILABLE = lib is not None and hasattr(lib, "fj_put_records_body")
NO_HASH_KEY = 0xFFFFFFFF
ENTRY_ROOM = 64  # an entry's JSON around its data, key and hash key: 51 bytes and a comma
_data, _key, _hash = itemgetter(0), itemgetter(1), itemgetter(2)

if AVAILABLE:
    _alloc = ffi.new_allocator(should_clear_after_alloc=False)


def body(stream_field, entries):
    """The body: native when it can, else the Python reference."""
    built = native_body(stream_field, entries)
    return built if built is not None else python_body(stream_field, entries)


def python_body(stream_field, entries):
    """The reference. `stream_field`: b'"StreamName":"..."' or the StreamARN's."""
    parts = []
    add = parts.append
    b2a_base64 = binascii.b2a_base64  # base64.b64encode would add a Python call per record
    dumps = orjson.dumps
    for data, key, hash_key, _events in entries:
        if hash_key is None:
            add(b'{"Data":"%b","PartitionKey":%b}' % (b2a_base64(data, newline=False), dumps(key)))
        else:
            add(b'{"Data":"%b","PartitionKey":%b,"ExplicitHashKey":"%b"}'
                % (b2a_base64(data, newline=False), dumps(key), hash_key.encode()))
    return b'{' + stream_field + b',"Records":[' + b",".join(parts) + b"]}"


def native_body(stream_field, entries):
    """The same bytes from csrc/fastjson_body.c, or None (the caller uses python_body)."""
    if not AVAILABLE or not entries:
        return None
    datas, keys, hashes = list(map(_data, entries)), list(map(_key, entries)), list(map(_hash, entries))
    try:
        data = b"".join(datas)
        key_text = "".join(keys)
    except TypeError:  # not bytes, not str: the reference says what it makes of them
        return None
    if not key_text.isascii():
        return None
    hashes = _hash_keys(hashes)
    if hashes is None:
        return None
    hash_bytes, hash_lens = hashes
    key_bytes = key_text.encode("ascii")
    count = len(entries)
    try:
        data_lens = ffi.new("uint32_t[]", list(map(len, datas)))
    except OverflowError:
        return None
    cap = 16 + len(stream_field) + 4 * (len(data) // 3) + 4 * count + 6 * len(key_bytes) + len(hash_bytes) \
        + ENTRY_ROOM * count
    buffers = scratch.Buffers(ffi, _alloc)
    with buffers as new:
        out = new("uint8_t[]", cap)
        used = ffi.new("size_t *")
        rc = lib.fj_put_records_body(ffi.from_buffer("uint8_t[]", stream_field), len(stream_field),
                                     ffi.from_buffer("uint8_t[]", data), len(data), data_lens,
                                     ffi.from_buffer("uint8_t[]", key_bytes), len(key_bytes),
                                     ffi.new("uint32_t[]", list(map(len, keys))),
                                     ffi.from_buffer("uint8_t[]", hash_bytes), len(hash_bytes), hash_lens,
                                     count, out, cap, used)
        buffers.wrote(out, used[0])
        return ffi.buffer(out, used[0])[:] if rc == 0 else None


def _hash_keys(hashes):
    """(the explicit hash keys concatenated, their lengths or NULL), or None to decline."""
    if hashes.count(None) == len(hashes):  # plain records: none
        return b"", ffi.NULL
    try:
        text = "".join([h for h in hashes if h is not None])
    except TypeError:
        return None
    if not text.isascii():
        return None
    return text.encode("ascii"), ffi.new("uint32_t[]", [NO_HASH_KEY if h is None else len(h) for h in hashes])
