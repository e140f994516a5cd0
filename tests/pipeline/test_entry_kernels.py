"""The entry kernels in C (csrc/fastjson_entries.c, entry_kernels_native.py)
against their Python references (entry_kernels.*_reference) on thousands of
random EntryTables: keys with non-ASCII and control characters, empty data,
explicit hash keys at and past 2**128 - 1, leading zeros, empty and not
digits; shard bounds with gaps, none, one, 4096. The native result must be
there (not a decline) and equal; where the C code declines (a key that is not
UTF-8, a column too short, an index outside the table) the public function
gives the reference's answer."""
import hashlib
import random
from array import array
from pathlib import Path

import orjson
import pytest

from fluentbit_kinesis.pipeline import entry_kernels, entry_kernels_native as native
from fluentbit_kinesis.pipeline.entry_table import EntryTable

BUILT = any((Path(entry_kernels.__file__).parent.parent).glob("_fastjson.*.so"))
needs_native = pytest.mark.skipif(not BUILT, reason="fluentbit_kinesis._fastjson not built (make)")

STREAM = b'"StreamName":"s"'
TOP = 2 ** 128 - 1
KEY_CHARS = 'ab"\\/\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\x80 -_.é\u2028\u2029\ufeff\uffff中😀'
SPECIAL_HASHES = ["0", str(TOP), str(2 ** 128), "0" * 50 + "7", "", "12a", "9" * 60, "0" * 60, "-1",
                  " 1", "1 ", "+1", "1_0", str(2 ** 127), str(TOP - 1), "00" + str(TOP)]


def random_key(rng):
    if rng.random() < 0.3:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    return "".join(rng.choice(KEY_CHARS) for _ in range(rng.randrange(0, 30)))


def random_hash(rng):
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(SPECIAL_HASHES)
    if roll < 0.8:
        return str(rng.randrange(2 ** rng.choice((8, 64, 127, 128))))
    return str(rng.randrange(2 ** 128 - 2 ** 100, 2 ** 128 + 2 ** 100))


def random_table(rng, count=None):
    count = rng.randrange(0, 40) if count is None else count
    hashes = rng.random() < 0.5
    entries = []
    for i in range(count):
        data = rng.randbytes(rng.choice((0, 1, 2, 3, rng.randrange(0, 400))))
        hash_key = random_hash(rng) if hashes and rng.random() < 0.6 else None
        entries.append((data, random_key(rng), hash_key, i))
    return EntryTable.from_entries(entries)


def random_bounds(rng):
    shards = rng.choice((0, 1, 2, 3, 7, 16, 256, rng.randrange(1, 64), 4096))
    cuts = sorted({rng.randrange(1, 2 ** 128) for _ in range(shards - 1)})  # distinct but for a 2**-100 chance
    starts, ends = [0] + cuts, [c - 1 for c in cuts] + [TOP]
    if rng.random() < 0.5:  # gaps: each range cut short at random, the first may start late
        ends = [rng.randrange(s, e + 1) if rng.random() < 0.5 else e for s, e in zip(starts, ends)]
        if starts and rng.random() < 0.5:
            starts[0] = rng.randrange(0, ends[0] + 1)
    return entry_kernels.ShardBounds(starts[:shards], ends[:shards])


@needs_native
def test_the_native_kernels_are_the_ones_used():
    """Built, so the public functions run the C code: a silent fallback fails here."""
    assert entry_kernels.NATIVE and native.AVAILABLE
    table = random_table(random.Random(1), 50)
    bounds = entry_kernels.ShardBounds([0], [TOP])
    assert native.shard_indices(table, bounds) is not None
    assert isinstance(bounds.packed, array)  # prepared once, kept
    assert native.group(array("i", [0, -1, 0]), 1) is not None
    assert native.body_at(STREAM, table, array("I", range(50))) is not None


@needs_native
def test_shard_indices_agree_on_random_tables():
    rng = random.Random(18)
    for _ in range(3000):
        table, bounds = random_table(rng), random_bounds(rng)
        found = native.shard_indices(table, bounds)
        assert found is not None
        assert found == entry_kernels.shard_indices_reference(table, bounds)
        assert entry_kernels.shard_indices(table, bounds) == found


@needs_native
def test_shard_indices_at_the_edges():
    """Each special hash key against bounds that start or end exactly at it."""
    table = EntryTable.from_entries([(b"", "k", h, 0) for h in SPECIAL_HASHES] + [(b"", "k", None, 0)])
    md5 = int.from_bytes(hashlib.md5(b"k").digest(), "big")
    for point in (0, 1, 7, 2 ** 127, TOP - 1, TOP, md5, md5 + 1):
        for starts, ends in (([point], [point]), ([0, point], [max(point - 1, 0), TOP]),
                             ([point], [TOP]), ([0], [point])):
            bounds = entry_kernels.ShardBounds(starts, ends)
            assert native.shard_indices(table, bounds) == entry_kernels.shard_indices_reference(table, bounds)


def test_bounds_the_c_code_cannot_hold_go_to_the_reference():
    table = random_table(random.Random(2), 30)
    for starts, ends in (([-1], [TOP]), ([0], [2 ** 128]), ([0, 5], [TOP]), ([True], [TOP])):
        bounds = entry_kernels.ShardBounds(starts, ends)
        assert native.shard_indices(table, bounds) is None
        try:
            expected = entry_kernels.shard_indices_reference(table, bounds)
        except IndexError:  # ends shorter than starts
            continue
        assert entry_kernels.shard_indices(table, bounds) == expected


@needs_native
def test_group_agrees():
    rng = random.Random(19)
    for _ in range(3000):
        lanes = rng.choice((0, 1, 2, 5, 64, 4096))
        shards = array("i", (rng.randrange(-3, lanes + 1) for _ in range(rng.randrange(0, 200))))
        found = native.group(shards, lanes)
        assert found is not None
        assert found == entry_kernels.group_reference(shards, lanes)
        assert entry_kernels.group(shards, lanes) == found


def test_group_declines_what_the_reference_refuses():
    assert native.group(array("i", [0, 3]), 2) is None
    with pytest.raises(IndexError):
        entry_kernels.group(array("i", [0, 3]), 2)
    assert native.group([0, 1], 2) is None  # a list: the reference's
    assert entry_kernels.group([0, -1, 1], 2) == entry_kernels.group_reference([0, -1, 1], 2)


def random_indices(rng, count):
    if count == 0 or rng.random() < 0.1:
        return array("I")
    picked = [rng.randrange(count) for _ in range(rng.randrange(0, 2 * count))]
    return array("I", picked) if rng.random() < 0.8 else picked


@needs_native
def test_body_at_agrees_byte_for_byte():
    rng = random.Random(20)
    for _ in range(3000):
        table = random_table(rng)
        indices = random_indices(rng, table.count)
        found = native.body_at(STREAM, table, indices)
        assert found is not None
        assert found == entry_kernels.body_at_reference(STREAM, table, indices)
        orjson.loads(found)  # and JSON: the escapes are right


@needs_native
def test_a_tables_columns_kept_for_its_next_bodies_follow_a_column_replaced():
    """body_view keeps the table's columns as C reads them (every request of
    a flush reads the same); a column replaced since is read anew."""
    rng = random.Random(21)
    table, other = random_table(rng, 40), random_table(rng, 40)
    indices = array("I", range(0, 40, 3))
    assert native.body_at(STREAM, table, indices) == entry_kernels.body_at_reference(STREAM, table, indices)
    kept = table.native
    assert native.body_at(STREAM, table, indices) is not None and table.native is kept  # the same columns: kept
    columns = ("data", "data_at", "data_len", "keys", "key_at", "key_len", "hashes", "hash_at", "hash_len")
    for name in columns:  # each one a new object of the same content: read anew, the same body
        value = getattr(table, name)
        if value is None:  # no hash keys
            continue
        setattr(table, name, bytes(bytearray(value)) if type(value) is bytes else value[:])
        assert native.body_at(STREAM, table, indices) == entry_kernels.body_at_reference(STREAM, table, indices)
        assert table.native is not kept
        kept = table.native
    for name in columns:  # another table's columns: its body
        setattr(table, name, getattr(other, name))
    assert native.body_at(STREAM, table, indices) == entry_kernels.body_at_reference(STREAM, other, indices)


@needs_native
def test_a_request_bodys_buffer_goes_back_when_its_block_ends_even_by_an_exception():
    """request_body's native buffer (a scratch mapping past 128 KiB) is the
    next request's once the block ends, however it ends; the body is the reference's."""
    from fluentbit_kinesis.pipeline import scratch
    table = EntryTable.from_entries([(b"x" * 1000, "key", None, i) for i in range(300)])
    indices = array("I", range(300))
    expected = entry_kernels.body_at_reference(STREAM, table, indices)
    with entry_kernels.request_body(STREAM, table, indices) as body:
        assert type(body) is not bytes and bytes(body) == expected and len(body) > scratch.MAPPED_FROM
    kept = len(scratch._kept)
    assert kept >= 1  # its mapping, given back
    with pytest.raises(ZeroDivisionError):
        with entry_kernels.request_body(STREAM, table, indices) as body:
            assert bytes(body) == expected and len(scratch._kept) == kept - 1  # the same mapping, taken again
            1 / 0
    assert len(scratch._kept) == kept


@needs_native
def test_body_at_escapes_every_character_as_orjson():
    """Every code point below 0x800 and a few above, each a key of its own."""
    points = list(range(0x800)) + [0xd7ff, 0xe000, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff]
    table = EntryTable.from_entries([(b"x", chr(p) * 3, None, 0) for p in points if not 0xd800 <= p <= 0xdfff])
    indices = array("I", range(table.count))
    assert native.body_at(STREAM, table, indices) == entry_kernels.body_at_reference(STREAM, table, indices)


def test_a_key_that_is_not_utf8_is_the_references():
    """surrogateescape'd bytes: the C code declines, orjson refuses the key as the reference does."""
    table = EntryTable.from_entries([(b"a", "ok", None, 0), (b"b", "bad\udcff", None, 1)])
    assert native.body_at(STREAM, table, array("I", [0, 1])) is None
    with pytest.raises(TypeError):  # orjson.JSONEncodeError
        entry_kernels.body_at(STREAM, table, [0, 1])
    if native.AVAILABLE:
        assert native.body_at(STREAM, table, array("I", [0])) is not None


@needs_native
def test_columns_out_of_contract_decline():
    rng = random.Random(3)
    table = random_table(rng, 10)
    bounds = entry_kernels.ShardBounds([0], [TOP])
    assert native.body_at(STREAM, table, [10]) is None  # past the table
    assert native.body_at(STREAM, table, [-1]) is None  # not a uint32: the reference's
    table.key_len = table.key_len[:5]  # shorter than the table
    assert native.shard_indices(table, bounds) is None
    assert native.body_at(STREAM, table, [0]) is None
    table = random_table(rng, 10)
    table.key_at = array("I", [len(table.keys)] * 10)  # offsets past the buffer
    table.key_len = array("I", [1] * 10)
    assert native.shard_indices(table, bounds) is None
    table = random_table(rng, 10)
    table.key_len = list(table.key_len)  # not an array
    assert native.shard_indices(table, bounds) is None
    table = random_table(rng, 10)
    expected = entry_kernels.shard_indices_reference(table, bounds)
    table.keys = memoryview(table.keys)  # a view of bytes serves as well
    assert native.shard_indices(table, bounds) == expected
    table.keys = memoryview(array("H", [1, 2]))  # not bytes
    assert native.shard_indices(table, bounds) is None


@needs_native
def test_empty_table_and_no_shards():
    table = EntryTable.from_entries([])
    bounds = entry_kernels.ShardBounds([], [])
    assert native.shard_indices(table, bounds) == array("i")
    assert native.group(array("i"), 0) == (array("I"), array("I", [0, 0]))
    assert native.body_at(STREAM, table, []) == b'{"StreamName":"s","Records":[]}'
    table = random_table(random.Random(4), 20)
    assert native.shard_indices(table, bounds) == array("i", [-1] * 20)
