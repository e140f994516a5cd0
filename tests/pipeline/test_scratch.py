"""The C code's large buffers: mappings of their own, kept for the next
chunk up to KEPT_BYTES; small ones from the allocator given."""
from collections import deque

import pytest

from fluentbit_kinesis.pipeline import scratch
from fluentbit_kinesis.pipeline.fastpath import ffi

pytestmark = pytest.mark.skipif(ffi is None, reason="the native module is not built")
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def nothing_kept(monkeypatch):
    monkeypatch.setattr(scratch, "_kept", [])
    monkeypatch.setattr(scratch, "_returned", deque())  # nor what earlier tests' tables give back


def allocator():
    return ffi.new_allocator(should_clear_after_alloc=False)


def test_a_large_buffer_is_a_mapping_the_next_block_takes_again():
    with scratch.Buffers(ffi, allocator()) as new:
        out = new("uint8_t[]", MIB)
        out[0], out[MIB - 1] = 7, 9
    assert [len(m) for m in scratch._kept] == [MIB]
    with scratch.Buffers(ffi, allocator()) as new:
        again = new("uint8_t[]", MIB // 2)  # the smallest kept mapping that fits, not cleared
        assert again[0] == 7 and len(again) == MIB
        other = new("uint32_t[]", MIB, 4)  # none left that fits: a new one
        assert len(other) == MIB
    assert sorted(len(m) for m in scratch._kept) == [MIB, 4 * MIB]


def test_small_buffers_come_from_the_allocator():
    with scratch.Buffers(ffi, allocator()) as new:
        small = new("uint8_t[]", scratch.MAPPED_FROM - 1)
        assert len(small) == scratch.MAPPED_FROM - 1
    assert scratch._kept == []


def test_no_more_than_kept_bytes_are_kept(monkeypatch):
    monkeypatch.setattr(scratch, "KEPT_BYTES", 3 * MIB)
    with scratch.Buffers(ffi, allocator()) as new:
        for _ in range(3):
            new("uint8_t[]", 2 * MIB)[0] = 1
    kept = list(scratch._kept)
    assert [len(m) for m in kept] == [2 * MIB]  # the others unmapped
    assert not kept[0].closed


def test_a_mapping_is_a_power_of_two_so_a_slightly_larger_buffer_fits_it_again():
    with scratch.Buffers(ffi, allocator()) as new:
        first = new("uint8_t[]", 3 * MIB)
        assert len(first) == 4 * MIB
    with scratch.Buffers(ffi, allocator()) as new:
        new("uint8_t[]", 3 * MIB + 4096)
    assert [len(m) for m in scratch._kept] == [4 * MIB]  # the same one, no other written


def test_the_mapping_written_most_goes_first_and_past_kept_bytes_the_least_written_go(monkeypatch):
    monkeypatch.setattr(scratch, "_written", {})
    buffers = scratch.Buffers(ffi, allocator())
    with buffers as new:
        out, table = new("uint8_t[]", 2 * MIB), new("uint32_t[]", MIB // 2, 4)
        out[0] = table[0] = 1
        buffers.wrote(table, 4096)
        buffers.wrote(out, MIB)
    out_mapping = next(m for m in scratch._kept if scratch._written[id(m)] == MIB)
    # the output again (new's first buffer), whichever of the two it used before: the one written most
    buffers = scratch.Buffers(ffi, allocator())
    with buffers as new:
        new("uint8_t[]", MIB)
        assert buffers.mapped[0][1] is out_mapping
        new("uint8_t[]", MIB)
    monkeypatch.setattr(scratch, "KEPT_BYTES", 2 * MIB)
    with scratch.Buffers(ffi, allocator()) as new:
        new("uint8_t[]", MIB)  # back over the limit: the least written is unmapped
    assert scratch._kept == [out_mapping] and not out_mapping.closed


def test_a_kept_buffer_outlives_its_block_and_its_mapping_comes_back_once_let_go_of():
    buffers = scratch.Buffers(ffi, allocator())
    with buffers as new:
        out = new("uint8_t[]", MIB)
        out[0:3] = b"abc"
        view = buffers.keep(out, 3)
    assert scratch._kept == []  # lent out
    assert bytes(view) == b"abc"
    del view
    with scratch.Buffers(ffi, allocator()) as new:
        again = new("uint8_t[]", MIB // 2)  # the same mapping again, as it was written
        assert bytes(again[0:3]) == b"abc" and len(again) == MIB


def test_a_small_kept_buffer_is_a_copy():
    buffers = scratch.Buffers(ffi, allocator())
    with buffers as new:
        out = new("uint8_t[]", 16)
        out[0:2] = b"hi"
        assert buffers.keep(out, 2) == b"hi"
