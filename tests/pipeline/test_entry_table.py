"""EntryTable (a flush's entries as columns) against the tuples it is built
from, and the body of entries picked by index (entry_kernels.body_at, what
delivery sends) against python_body of those tuples."""
import random
from array import array

import pytest

from fluentbit_kinesis.pipeline import entry_kernels, request_body
from fluentbit_kinesis.pipeline.aggregation import AggregateEvents
from fluentbit_kinesis.pipeline.entry_table import NO_HASH_KEY, EntryTable
from fluentbit_kinesis.pipeline.keys import RandomKey

STREAM = b'"StreamName":"s"'
KEYS = ["pod-a", "", "k" * 256, "pod-é", "\U0001F600", "a\x00b", 'q"\\', "\udcff", RandomKey("0123abcd")]


def random_entries(rng, count, hash_keys=True, ascii_only=False, surrogates=True):
    keys = [k for k in KEYS if (k.isascii() or not ascii_only) and (surrogates or k != "\udcff")]
    entries = []
    for index in range(count):
        events = index
        if rng.random() < 0.1:
            events = [index, index + 10_000]
        elif rng.random() < 0.05:
            events = AggregateEvents([index])
        explicit = str(rng.randrange(2 ** 128)) if hash_keys and rng.random() < 0.3 else None
        entries.append((rng.randbytes(rng.choice((0, 1, rng.randrange(0, 2000)))), rng.choice(keys), explicit, events))
    return entries


@pytest.mark.parametrize("seed", range(8))
def test_a_table_gives_back_its_entries(seed):
    rng = random.Random(seed)
    entries = random_entries(rng, rng.randrange(1, 500), hash_keys=seed % 2 == 0)
    table = EntryTable.from_entries(entries)
    assert len(table) == table.count == len(entries)
    assert [table.entry(i) for i in range(len(table))] == entries
    for i, (data, key, explicit, events) in enumerate(entries):
        encoded = key.encode("utf-8", "surrogateescape")
        assert table.data[table.data_at[i]:table.data_at[i] + table.data_len[i]] == data
        assert table.keys[table.key_at[i]:table.key_at[i] + table.key_len[i]] == encoded
        assert table.sizes[i] == len(data) + len(encoded)
        if table.hashes is None:
            assert explicit is None
        elif explicit is None:
            assert table.hash_len[i] == NO_HASH_KEY
        else:
            assert table.hashes[table.hash_at[i]:table.hash_at[i] + table.hash_len[i]] == explicit.encode()
        assert table.events[i] is events
    assert (table.hashes is None) == all(e[2] is None for e in entries)


def test_shaped_records_and_no_entries():
    shaped = [(b"a", "k1", 4), (b"", "pod-é", 7), (b"xyz", RandomKey("r"), 9)]
    table = EntryTable.from_shaped(shaped)
    assert [table.entry(i) for i in range(3)] == [(d, k, None, n) for d, k, n in shaped]
    assert table.hashes is None and table.events == [4, 7, 9]
    assert EntryTable.from_shaped(table) is table  # the fast path made one already
    for empty in (EntryTable.from_entries([]), EntryTable.from_shaped([])):
        assert len(empty) == 0 and empty.data == b"" and empty.keys == b"" and list(empty.sizes) == []


@pytest.mark.parametrize("seed", range(12))
def test_the_body_of_picked_entries_is_the_reference(seed):
    rng = random.Random(100 + seed)
    entries = random_entries(rng, rng.randrange(1, 800), hash_keys=seed % 3 == 0, ascii_only=seed % 2 == 0,
                             surrogates=False)  # (orjson writes no lone surrogate)
    table = EntryTable.from_entries(entries)
    picked = rng.sample(range(len(entries)), rng.randrange(1, len(entries) + 1))
    for indices in (array("I", picked), range(len(entries))):
        expected = request_body.python_body(STREAM, [entries[i] for i in indices])
        assert entry_kernels.body_at(STREAM, table, indices) == expected
