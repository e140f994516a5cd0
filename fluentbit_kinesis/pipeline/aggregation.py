"""Shaped records -> Kinesis entries: one per record (plain), KPL aggregates
(shard aware), or newline-delimited packs (simple_aggregation).

Input: shaped entries (data, partition key, event index), or the fast path's
EntryTable of them. Output: delivery entries (data, partition key, explicit
hash key or None, events), where events is the event index, or for a pack the
list of the indices it carries; from a table, an EntryTable of them.

KPL aggregates (the format: kpl.py): every sub-record carries the aggregate's own ExplicitHashKey (a table of one
entry, explicit_hash_key_index 0 on every Record). A KCL consumer checks a
sub-record's explicit hash key, when it has one, against the range of the
shard the aggregate landed on; the aggregate lands where that same key
routes it, so the check passes whatever the stream did between our
ListShards and the PutRecords (split, merge, UpdateShardCount). Records are
still grouped by the shard their own key hashes to, so a key's records stay
on one shard while the map is current.

The per-record part of `Aggregator.pack` runs in C when it can
(kpl_native.py, csrc/fastjson_kpl*.c; over a table, kpl_table.py);
`_pack_python` is the reference and gives the same entries
(tests/pipeline/test_aggregation_native.py, test_kpl_table.py).
"""
import os

from . import kpl_native, kpl_table
from .compression import compressor
from .entry_table import EntryTable
from .keys import RandomKey
from .kpl import AGGREGATE_KEY, HASH_KEY_INDEX, MAGIC, OVERHEAD, AggregateEvents, encode, varint_size  # noqa: F401

# five PUT payload units (25 KiB each; a record pays whole units): eight such
# aggregates a second fill a shard's 1 MiB/s, and a full one pays no unit it
# does not use
PACED_AGGREGATE_BYTES = 5 * 25 * 1024


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
        self.size = OVERHEAD + 2 + len(self.hash_key)  # and the hash key table

    def cost(self, key, data):
        """Bytes that adding this record adds to the Kinesis record."""
        n = len(data)
        index = self.keys.get(key)
        new_key = index is None
        if new_key:
            index = len(self.keys)
        inner = (3 if index < 128 else 2 + varint_size(index)) + len(HASH_KEY_INDEX) + n + \
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
        self._turn = 0  # keyless records taken so far: spreads them evenly over the shards
        self._keyless_keys = {}  # shard id -> the key its keyless records share (one table entry)

    def pack(self, shaped):
        if not shaped:
            return []
        if not self.shards.maybe_refresh():
            return self._unaggregated(shaped)
        if self.unusable:
            self.unusable = False
            self.log.info("aggregation: in use again, the shard map is read")
        keyless = [(shard, self._keyless_key(shard)) for shard in self.shards.shards()]
        packed = None
        if isinstance(shaped, EntryTable):  # the fast path's: answered as a table, no object per record
            packed = kpl_table.pack(shaped, keyless, self.shards.route, self._turn, self.limit, self.skip)
            if packed is None:
                shaped = shaped.shaped()
        if packed is None:
            packed = kpl_native.pack(shaped, keyless, self.shards.route, self._turn, self.limit, self.skip)
        if packed is None:  # declined, or not built
            return self._pack_python(shaped, keyless)
        out, keyless_records = packed
        self._turn += keyless_records
        return out

    def _pack_python(self, shaped, keyless):
        """The reference. keyless: (shard, the key its keyless records share) per open shard."""
        route = self.shards.route  # key -> (shard, hash), cached per key
        limit, skip, turn = self.limit, self.skip, self._turn
        open_, out = {}, []
        for entry in shaped:
            data, key, event = entry
            if type(key) is RandomKey:  # no partition key: any shard will do, in turn
                shard, key = keyless[turn % len(keyless)]
                turn += 1
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
        self._turn = turn
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
        return shaped if isinstance(shaped, EntryTable) else plain(shaped)


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
