"""The C code's large buffers: mappings of their own, kept for the next
chunk up to KEPT_BYTES; small ones from the allocator given."""
import pytest

from fluentbit_kinesis.pipeline import scratch
from fluentbit_kinesis.pipeline.fastpath import ffi

pytestmark = pytest.mark.skipif(ffi is None, reason="the native module is not built")
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def nothing_kept(monkeypatch):
    monkeypatch.setattr(scratch, "_kept", [])


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
