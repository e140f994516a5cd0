"""KPL aggregation over an EntryTable (pipeline/kpl_table.py,
csrc/fastjson_kpl_table.c) against the Python reference
(Aggregator._pack_python) over the same records as tuples: the same
entries (bytes, partition keys, explicit hash keys, events with their type
and shard id, order) and the same turn, on seeded random tables (keys of
their own and made up, keys over 127 and 16383 bytes, records around skip
and limit, gaps in the shard map, 1 to 256 shards, events that are not the
entry indices), on the fuzz corpus's chunks shaped into tables by the fast
path (its keyless flags made in C), and on a retried chunk with some
records already delivered."""
import random
from array import array

import pytest

from fluentbit_kinesis import config
from fluentbit_kinesis.delivery.chunk_progress import ChunkProgress
from fluentbit_kinesis.delivery.ledger import Ledger
from fluentbit_kinesis.pipeline import kpl_native, kpl_table
from fluentbit_kinesis.pipeline.aggregation import AggregateEvents
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.pipeline.keys import RandomKey
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.pipeline.test_aggregation_native import (FILES, MIXES, SHARD_COUNTS, aggregator, listed_shards,
                                                    random_chunk, random_streams)
from tests.support import differential
from tests.support.harness import make_chunk

pytestmark = pytest.mark.skipif(not kpl_table.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")


def table_of(shaped):
    """The shaper's table of these (data, key, event) records, made-up keys flagged."""
    table = EntryTable.from_shaped(shaped)
    flags = bytes(type(key) is RandomKey for _data, key, _event in shaped)
    table.keyless = flags if 1 in flags else None
    return table


def same_as_reference(agg, keyless, table, shaped):
    """kpl_table.pack over `table` and the reference over `shaped`: identical."""
    turn = agg._turn
    packed = kpl_table.pack(table, keyless, agg.shards.route, turn, agg.limit, agg.skip)
    reference = agg._pack_python(shaped, keyless)
    assert packed is not None, "the table's pack declined"
    got, keyless_taken = packed
    assert keyless_taken == agg._turn - turn
    assert isinstance(got, EntryTable) and got.count == len(reference)
    assert list(got.sizes) == [a + b for a, b in zip(got.data_len, got.key_len)]
    assert (got.hashes is None) == all(entry[2] is None for entry in reference)
    for i, expected in enumerate(reference):
        entry = got.entry(i)
        assert entry[:3] == expected[:3], f"entry {i}"
        assert type(entry[3]) is type(expected[3]) and entry[3] == expected[3]
        if type(expected[3]) is AggregateEvents:
            assert entry[3].shard_id == expected[3].shard_id
    return got


@pytest.mark.parametrize("seed", range(12))
def test_random_tables(seed):
    rng = random.Random(seed)
    for agg, keyless, count, mix in random_streams(rng):
        for _ in range(2):  # the turn carries on to the next chunk
            shaped = random_chunk(rng, count, mix)
            table = table_of(shaped)
            if rng.random() < 0.5:  # records at offsets of their own: reversed, with bytes between
                table = scattered(table, rng)
            same_as_reference(agg, keyless, table, shaped)


def scattered(table, rng):
    """The same table with its records' bytes in another order, with gaps."""
    data, at = bytearray(), array("I", [0]) * table.count
    for i in reversed(range(table.count)):
        data += rng.randbytes(rng.randrange(3))
        at[i] = len(data)
        data += table.data_of(i)
    table.data, table.data_at = bytes(data), at
    return table


def test_corpus_chunks_shaped_into_tables_by_the_fast_path():
    """The fast path's table (keyless flags from C) against the tuple
    shaper's records: the same entries, made-up keys never reaching them."""
    tables = aggregates = 0
    maps = [listed_shards(count) for count in SHARD_COUNTS] + [listed_shards(8, gaps={2, 5})]
    for path in FILES:
        options, data = differential.split(path.read_bytes())
        for variant in [options] + [(options & 0x80) | low for low in range(0, 64, 7)]:
            settings = differential.settings_for(variant & ~64, aggregation=True)  # tables: no compression
            table = Shaper(settings, tables=True).shape_chunk(data).entries
            if not isinstance(table, EntryTable) or not table.count:
                continue
            shaped = Shaper(settings).shape_chunk(data).entries
            tables += 1
            for mix, listed in zip(MIXES, maps * 2):
                agg, keyless = aggregator(mix, listed)
                got = same_as_reference(agg, keyless, table, shaped)
                aggregates += sum(type(events) is AggregateEvents for events in got.events)
    assert tables > len(FILES) and aggregates > 2 * len(FILES)


def test_keyless_flags_from_the_fast_path():
    rows = [{"log": f"line {i}", "kubernetes": {"pod_name": f"pod-{i % 3}"} if i % 4 else {}} for i in range(40)]
    settings = config.Settings(aggregation=True, partition_key=["kubernetes", "pod_name"])
    table = Shaper(settings, tables=True).shape_chunk(make_chunk(rows)).entries
    assert isinstance(table, EntryTable) and list(table.keyless) == [int(i % 4 == 0) for i in range(40)]
    everyone = Shaper(config.Settings(aggregation=True), tables=True).shape_chunk(make_chunk(rows)).entries
    assert list(everyone.keyless) == [1] * 40
    fixed = config.Settings(aggregation=True, fixed_partition_key="k")
    assert Shaper(fixed, tables=True).shape_chunk(make_chunk(rows)).entries.keyless is None
    plain = Shaper(config.Settings(partition_key=["log"]), tables=True)
    assert plain.shape_chunk(make_chunk(rows)).entries.keyless is None  # only aggregation asks for them


class MemoryLedger(Ledger):
    def __init__(self, done):
        self.persistent, self._done = False, done

    def __len__(self):
        return 1

    def done(self, key):
        return self._done


def test_a_retried_chunk_aggregates_only_what_is_not_delivered():
    rng = random.Random(7)
    rows = [{"log": rng.randbytes(rng.randrange(50, 400)).hex(), "k": f"pod-{i % 5}" if i % 3 else 7}
            for i in range(600)]
    settings = config.Settings(aggregation=True, partition_key=["k"])
    table = Shaper(settings, tables=True).shape_chunk(make_chunk(rows)).entries
    shaped = Shaper(settings).shape_chunk(make_chunk(rows)).entries
    done = set(rng.sample(range(600), 250)) | {-1}
    todo = ChunkProgress(MemoryLedger(done), "tag", b"chunk").todo(table)
    assert isinstance(todo, EntryTable) and todo.keyless is not None
    agg, keyless = aggregator((1024, 300), listed_shards(4, gaps={1}))
    got = same_as_reference(agg, keyless, todo, [entry for entry in shaped if entry[2] not in done])
    sent = [e for events in got.events for e in (events if type(events) is AggregateEvents else [events])]
    assert sorted(sent) == sorted(set(range(600)) - done)


def test_pack_takes_the_table_way_and_falls_back_on_what_it_declines(monkeypatch):
    agg, keyless = aggregator((None, 20 * 1024), listed_shards(4))
    shaped = [(b"x" * 100, f"pod-{i % 7}" if i % 5 else RandomKey(f"{i:016x}"), i) for i in range(300)]
    expected = agg._pack_python(shaped, keyless)
    agg._turn = 0
    packed = agg.pack(table_of(shaped))
    assert isinstance(packed, EntryTable) and list(packed) == expected and agg._turn == 60
    borrowed = shaped + [(b"z", keyless[0][1], 302)]  # a record's own key is a keyless key
    assert kpl_table.pack(table_of(borrowed), keyless, agg.shards.route, 0, agg.limit, agg.skip) is None
    agg._turn = 0
    expected = agg._pack_python(borrowed, keyless)
    agg._turn = 0
    assert agg.pack(table_of(borrowed)) == expected  # through the tuples, the same entries
    for module in (kpl_table, kpl_native):
        monkeypatch.setattr(module, "AVAILABLE", False)
    agg._turn = 0
    assert agg.pack(table_of(shaped)) == list(packed)  # not built: the reference


def test_without_a_shard_map_the_table_goes_as_it_is():
    agg, _keyless = aggregator((None, 20 * 1024), listed_shards(2))
    agg.shards.maybe_refresh = lambda: False
    table = table_of([(b"x", RandomKey("r" * 16), 0), (b"y", "k", 1)])
    assert agg.pack(table) is table


def test_the_answers_buffer_is_reused_only_once_no_table_holds_it():
    agg, keyless = aggregator((None, 20 * 1024), listed_shards(4))
    shaped = [(bytes([i % 251]) * 300, f"pod-{i % 7}", i) for i in range(200)]
    first = agg.pack(table_of(shaped))
    kept = list(first)
    second = agg.pack(table_of([(b"other" * 60, "pod-1", i) for i in range(200)]))
    assert list(first) == kept and address(second) != address(first)  # the first's bytes not written over
    was = address(second)
    del first, second
    third = agg.pack(table_of(shaped))
    assert list(third) == kept and address(third) == was  # nothing held it: the same buffer again


def address(table):
    ffi = kpl_table.ffi
    return int(ffi.cast("uintptr_t", ffi.from_buffer(table.data)))
