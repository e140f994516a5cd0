"""fj_shard_indices's key -> hash memo (csrc/fastjson_entries.c): kept between
calls, two keys per set, keys of up to 31 bytes. A memo must change no
answer: keys seen before, keys evicting each other in a set, keys that share
their first and last 8 bytes, lengths around the limit, and a memo of one set
(every key collides) all give the reference's shards."""
import random
from array import array

from fluentbit_kinesis.pipeline import entry_kernels, entry_kernels_native as native
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from tests.pipeline.test_entry_kernels import needs_native, random_bounds

SET_BYTES = 96


def keys_alike(rng):
    """Keys that differ only in their middle, or only in length, or not at all."""
    head, tail = "pod-name", "-x2k4pq9"
    roll = rng.random()
    if roll < 0.4:
        return head + "".join(rng.choice("ab") for _ in range(rng.randrange(0, 16))) + tail
    if roll < 0.6:
        return "k" * rng.randrange(1, 40)  # 31 and 32 bytes among them: memo and no memo
    if roll < 0.8:
        return rng.choice(["é" * 15, "é" * 16, "中" * 10, "中" * 11, "a", ""])
    return f"{rng.getrandbits(64):016x}"  # a made-up key


def shards_with_memo(table, bounds, memo):
    count = table.count
    out = array("i", [0]) * count
    ffi, lib = native.ffi, native.lib
    rc = lib.fj_shard_indices(
        table.keys, len(table.keys), ffi.from_buffer("uint32_t[]", table.key_at),
        ffi.from_buffer("uint32_t[]", table.key_len), ffi.NULL, 0, ffi.NULL, ffi.NULL, count,
        ffi.from_buffer("uint64_t[]", native.packed_bounds(bounds)), len(bounds.starts),
        ffi.from_buffer("int32_t[]", out, require_writable=True), memo, len(memo))
    assert rc == 0
    return out


@needs_native
def test_a_kept_memo_changes_no_answer():
    rng = random.Random(8)
    for sets in (1, 2, 64):
        memo = native.ffi.new("uint8_t[]", sets * SET_BYTES)
        for _ in range(400):
            bounds = random_bounds(rng)
            table = EntryTable.from_entries([(b"d", keys_alike(rng), None, i) for i in range(rng.randrange(0, 60))])
            assert shards_with_memo(table, bounds, memo) == entry_kernels.shard_indices_reference(table, bounds)


@needs_native
def test_the_public_kernel_keeps_its_memo_between_calls():
    """The same made-up keys chunk after chunk, as the plain default sends them."""
    rng = random.Random(9)
    pool = [f"{rng.getrandbits(64):016x}" for _ in range(4096)]
    bounds = random_bounds(random.Random(3))
    for round_ in range(4):
        table = EntryTable.from_entries([(b"x", pool[(round_ * 3000 + i) % 4096], None, i) for i in range(3000)])
        assert native.shard_indices(table, bounds) == entry_kernels.shard_indices_reference(table, bounds)


@needs_native
def test_a_memo_that_is_not_whole_sets_of_a_power_of_two_declines():
    table = EntryTable.from_entries([(b"d", "k", None, 0)])
    bounds = entry_kernels.ShardBounds([0], [2 ** 128 - 1])
    out = array("i", [0])
    memo = native.ffi.new("uint8_t[]", 3 * SET_BYTES)
    ffi, lib = native.ffi, native.lib
    rc = lib.fj_shard_indices(table.keys, 1, ffi.from_buffer("uint32_t[]", table.key_at),
                              ffi.from_buffer("uint32_t[]", table.key_len), ffi.NULL, 0, ffi.NULL, ffi.NULL, 1,
                              ffi.from_buffer("uint64_t[]", native.packed_bounds(bounds)), 1,
                              ffi.from_buffer("int32_t[]", out, require_writable=True), memo, len(memo))
    assert rc == -1
