"""Shaped records -> Kinesis entries: one per record (plain), KPL aggregates
(shard aware), or newline-delimited packs (simple_aggregation).

Input: shaped entries (data, partition key, event index). Output: delivery
entries (data, partition key, explicit hash key or None, events), where events
is the event index, or for a pack the list of the indices it carries.

KPL format: magic F3 89 9A C2, protobuf AggregatedRecord, MD5 of the protobuf.
    AggregatedRecord { repeated string partition_key_table = 1;
                       repeated string explicit_hash_key_table = 2;
                       repeated Record records = 3; }
    Record { uint64 partition_key_index = 1; uint64 explicit_hash_key_index = 2;
             bytes data = 3; }
Every sub-record carries the aggregate's own ExplicitHashKey (a table of one
entry, explicit_hash_key_index 0 on every Record). A KCL consumer checks a
sub-record's explicit hash key, when it has one, against the range of the
shard the aggregate landed on; the aggregate lands where that same key
routes it, so the check passes whatever the stream did between our
ListShards and the PutRecords (split, merge, UpdateShardCount). Records are
still grouped by the shard their own key hashes to, so a key's records stay
on one shard while the map is current.
"""
import hashlib
import itertools
import os

from .compression import compressor
from .keys import RandomKey

MAGIC = b"\xf3\x89\x9a\xc2"
AGGREGATE_KEY = "a"  # outer partition key, as the KPL; the ExplicitHashKey routes
_OVERHEAD = len(MAGIC) + 16 + len(AGGREGATE_KEY)  # magic, MD5, outer key
_HASH_KEY_INDEX = b"\x10\x00"  # Record field 2, explicit_hash_key_index = 0
# five PUT payload units (25 KiB each; a record pays whole units): eight such
# aggregates a second fill a shard's 1 MiB/s, and a full one pays no unit it
# does not use
PACED_AGGREGATE_BYTES = 5 * 25 * 1024


def varint(n):
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# every varint up to 2**14 made once: sub-record lengths hit this table
_VARINTS = [varint(n) for n in range(1 << 14)]


def varint_size(n):
    return 1 if n < 128 else 2 if n < 16384 else (n.bit_length() + 6) // 7


def encode(partition_keys, records, explicit_hash_key=None):
    """A KPL aggregate. partition_keys: the key table (str); records:
    (partition key index, data bytes) pairs; explicit_hash_key (decimal str):
    given to every record, or to none."""
    table = _VARINTS
    parts = []
    add = parts.append
    for key in partition_keys:
        raw = key.encode("utf-8")
        add(b"\x0a" + (table[len(raw)] if len(raw) < 16384 else varint(len(raw))) + raw)
    hash_index = b""
    if explicit_hash_key is not None:
        add(b"\x12" + table[len(explicit_hash_key)] + explicit_hash_key.encode("ascii"))
        hash_index = _HASH_KEY_INDEX
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


def aggregate_limit(settings):
    """Bytes per aggregate: aggregation_maximum_record_size when it is set;
    by default PACED_AGGREGATE_BYTES. A shard takes 1 MiB/s, and pacing sends
    an aggregate only when the shard's bucket holds all of it: one of 770 kB
    filled 0.73 of a shard's second, and shared a shard with other producers
    badly (it needs the service's bucket that full). Capped by max_record_bytes."""
    if "aggregation_maximum_record_size" in settings.explicitly_set:
        limit = settings.aggregation_maximum_record_size
    else:
        limit = PACED_AGGREGATE_BYTES
    return min(limit, settings.max_record_bytes)


def plain(shaped):
    return [(data, key, None, index) for data, key, index in shaped]


class AggregateEvents(list):
    """The event indices in one aggregate, and the shard it was meant for: an
    answer naming another shard shows the shard map is stale."""
    __slots__ = ("shard_id",)


class _Builder:
    """One open aggregate for one shard."""
    __slots__ = ("shard_id", "keys", "entries", "size", "hash_key")

    def __init__(self, shard, first_hash):
        self.shard_id = shard.shard_id
        # routed by the first record's hash (as the KPL), never the shard's
        # EndingHashKey, which moto answers with HTTP 500
        self.hash_key = str(first_hash if first_hash != shard.end else shard.start)
        self.keys = {}       # partition key -> index in the key table
        self.entries = []    # shaped entries (data, key, event index)
        self.size = _OVERHEAD + 2 + len(self.hash_key)  # and the hash key table

    def cost(self, key, data):
        """Bytes that adding this record adds to the Kinesis record."""
        n = len(data)
        index = self.keys.get(key)
        new_key = index is None
        if new_key:
            index = len(self.keys)
        inner = (3 if index < 128 else 2 + varint_size(index)) + len(_HASH_KEY_INDEX) + n + \
            (1 if n < 128 else 2 if n < 16384 else varint_size(n))
        cost = (2 if inner < 128 else 3 if inner < 16384 else 1 + varint_size(inner)) + inner
        if new_key:
            raw = len(key) if key.isascii() else len(key.encode("utf-8"))
            cost += 1 + varint_size(raw) + raw
        return cost

    def finish(self):
        entries = self.entries
        if len(entries) == 1:  # an aggregate of one only costs overhead
            data, key, event = entries[0]
            return (data, key, None, event)
        keys = self.keys
        events = AggregateEvents([event for _data, _key, event in entries])
        events.shard_id = self.shard_id
        data = encode(list(keys), [(keys[key], data) for data, key, _event in entries], self.hash_key)
        return (data, AGGREGATE_KEY, self.hash_key, events)


class Aggregator:
    """KPL aggregation that no KCL consumer drops, even across a reshard: an
    aggregate holds the records whose keys hash into one shard, and each of
    them carries the aggregate's explicit hash key."""

    def __init__(self, settings, shard_map, logger, count_unaggregated=None):
        self.shards = shard_map
        self.log = logger
        self.count_unaggregated = count_unaggregated or (lambda count: None)
        self.unusable = False  # said at warn: aggregation is on but cannot be used
        self.limit = aggregate_limit(settings)
        self.skip = settings.skip_aggregation_record_size
        self._turn = itertools.count()  # spreads keyless records evenly over the shards
        self._keyless_keys = {}  # shard id -> the key its keyless records share (one table entry)

    def pack(self, shaped):
        if not shaped:
            return []
        if not self.shards.maybe_refresh():
            return self._unaggregated(shaped)
        if self.unusable:
            self.unusable = False
            self.log.info("aggregation: in use again, the shard map is read")
        shards = self.shards.shards()
        route = self.shards.route  # key -> (shard, hash), cached per key
        limit, skip, turn = self.limit, self.skip, self._turn
        keyless = [(shard, self._keyless_key(shard)) for shard in shards]
        open_, out = {}, []
        for entry in shaped:
            data, key, event = entry
            if type(key) is RandomKey:  # no partition key: any shard will do, in turn
                shard, key = keyless[next(turn) % len(keyless)]
                hash_key = shard.start
                entry = (data, key, event)
            else:
                shard, hash_key = route(key)
                if shard is None:  # a gap in the map (mid-reshard): send it alone
                    out.append((data, key, None, event))
                    continue
            builder = open_.get(shard.shard_id)
            if len(data) > skip:
                if builder is not None:  # keep this key's records in order
                    out.append(builder.finish())
                    del open_[shard.shard_id]
                out.append((data, key, None, event))
                continue
            if builder is None:
                builder = open_[shard.shard_id] = _Builder(shard, hash_key)
            cost = builder.cost(key, data)
            if builder.size + cost > limit and builder.entries:
                out.append(builder.finish())
                builder = open_[shard.shard_id] = _Builder(shard, hash_key)
                cost = builder.cost(key, data)
            if builder.size + cost > limit:  # too big to aggregate at all
                out.append((data, key, None, event))
                del open_[shard.shard_id]
                continue
            keys = builder.keys
            if key not in keys:
                keys[key] = len(keys)
            builder.entries.append(entry)
            builder.size += cost
        out.extend(builder.finish() for builder in open_.values())
        return out

    def _keyless_key(self, shard):
        key = self._keyless_keys.get(shard.shard_id)
        if key is None:
            if len(self._keyless_keys) > 4 * len(self.shards.shards()) + 64:
                self._keyless_keys.clear()  # shards closed by reshards
            key = self._keyless_keys[shard.shard_id] = os.urandom(8).hex()
        return key

    def _unaggregated(self, shaped):
        """Without a shard map an aggregate could be dropped by a KCL
        consumer: the records go plain, counted, said once per outage."""
        if not self.unusable:
            self.unusable = True
            self.log.warn(f"aggregation is on but cannot be used: {self.shards.problem or 'no shard map'}; "
                          "records are sent unaggregated until the shard map is read "
                          "(counted in records_unaggregated)")
        self.count_unaggregated(len(shaped))
        return plain(shaped)


class SimpleAggregator:
    """simple_aggregation: several records in one Kinesis record as newline
    delimited text, routed by the first record's partition key (other keys
    are not preserved). With compression, each packed record is compressed
    whole, so a consumer decompresses and then splits lines."""

    def __init__(self, settings, logger):
        self.log = logger
        self.compress = compressor(settings.compression)
        self.max_record_bytes = settings.max_record_bytes
        limit = aggregate_limit(settings)
        # room for the compressor's worst case growth on incompressible data
        self.limit = limit - (limit // 1000 + 64) if self.compress else limit

    def pack(self, shaped):
        out, parts, events, size, first_key = [], [], [], 0, None
        for data, key, event in shaped:
            newline = not data.endswith(b"\n")
            if parts and size + len(data) + newline > self.limit:
                out.append(self._entry(parts, first_key, events))
                parts, events = [], []
            if not parts:
                first_key = key
                size = len(key) if key.isascii() else len(key.encode("utf-8"))
            # a record alone at the service limit is sent without its newline
            if newline and (parts or size + len(data) < self.max_record_bytes):
                data += b"\n"
            parts.append(data)
            events.append(event)
            size += len(data)
        if parts:
            out.append(self._entry(parts, first_key, events))
        return out

    def _entry(self, parts, key, events):
        data = b"".join(parts)
        if self.compress is not None:
            data = self.compress(data)
        return (data, key, None, events)
