"""The KPL aggregate's wire format: magic F3 89 9A C2, a protobuf
AggregatedRecord, the MD5 of the protobuf's bytes.

    AggregatedRecord { repeated string partition_key_table = 1;
                       repeated string explicit_hash_key_table = 2;
                       repeated Record records = 3; }
    Record { uint64 partition_key_index = 1; uint64 explicit_hash_key_index = 2;
             bytes data = 3; }

`encode` writes one; aggregation.py decides what goes in each (and
csrc/fastjson_kpl_write.c writes the same bytes natively).
"""
import hashlib

MAGIC = b"\xf3\x89\x9a\xc2"
AGGREGATE_KEY = "a"  # outer partition key, as the KPL; the ExplicitHashKey routes
OVERHEAD = len(MAGIC) + 16 + len(AGGREGATE_KEY)  # magic, MD5, outer key
HASH_KEY_INDEX = b"\x10\x00"  # Record field 2, explicit_hash_key_index = 0
def varint(n):
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS = []  # every varint up to 2**14, sub-record lengths hit it: made at the first encode
# (0.7 MB of objects; aggregation packs in C, kpl_native.py, and needs none of it)


def _varints():
    if not _VARINTS:
        _VARINTS[:] = [varint(n) for n in range(1 << 14)]  # whole, in one step: threads may race
    return _VARINTS


def varint_size(n):
    return 1 if n < 128 else 2 if n < 16384 else (n.bit_length() + 6) // 7


def encode(partition_keys, records, explicit_hash_key=None):
    """A KPL aggregate. partition_keys: the key table (str); records:
    (partition key index, data bytes) pairs; explicit_hash_key (decimal str):
    given to every record, or to none."""
    table = _varints()
    parts = []
    add = parts.append
    for key in partition_keys:
        raw = key.encode("utf-8")
        add(b"\x0a" + (table[len(raw)] if len(raw) < 16384 else varint(len(raw))) + raw)
    hash_index = b""
    if explicit_hash_key is not None:
        add(b"\x12" + table[len(explicit_hash_key)] + explicit_hash_key.encode("ascii"))
        hash_index = HASH_KEY_INDEX
    # Record: field 1 (key index), field 2 (hash key index), field 3 (data)
    heads = [b"\x08" + (table[i] if i < 16384 else varint(i)) + hash_index + b"\x1a"
             for i in range(len(partition_keys))]
    for index, data in records:
        n = len(data)
        size = table[n] if n < 16384 else varint(n)
        head = heads[index]
        inner = len(head) + len(size) + n
        add(b"\x1a" + (table[inner] if inner < 16384 else varint(inner)) + head + size)
        add(data)
    body = b"".join(parts)
    return MAGIC + body + hashlib.md5(body).digest()


class AggregateEvents(list):
    """The event indices in one aggregate, and the shard it was meant for: an
    answer naming another shard shows the shard map is stale."""
    __slots__ = ("shard_id",)
