"""The PutRecords body's base64 (csrc/fastjson_body.c, 24 bytes a step in
csrc/fastjson_base64_avx2.c with AVX2) at every level this CPU runs, the
scalar one forced and not: every length 0..200, every byte value at every
offset of a 24-byte step, big records, through both native writers
(request_body.native_body, entry_kernels_native.body_at) against the Python
body and binascii.b2a_base64."""
import binascii
import os
import random
from array import array

import pytest

from fluentbit_kinesis.pipeline import entry_kernels, entry_kernels_native, request_body
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from tests.support import simd

pytestmark = pytest.mark.skipif(not entry_kernels_native.AVAILABLE,
                                reason="fluentbit_kinesis._fastjson not built (make)")
STREAM = b'"StreamName":"s"'


@pytest.fixture(params=simd.levels(), ids=simd.NAMES.get)
def level(request):
    with simd.forced(request.param):
        yield request.param


def same_bodies(datas):
    entries = [(data, "k", None, i) for i, data in enumerate(datas)]
    native = request_body.native_body(STREAM, entries)
    assert native == request_body.python_body(STREAM, entries)
    table = EntryTable.from_entries(entries)
    indices = array("I", range(table.count))
    assert entry_kernels_native.body_at(STREAM, table, indices) == native
    assert native == entry_kernels.body_at_reference(STREAM, table, indices)
    for data in datas:  # each there, as binascii writes it
        assert b'"Data":"%b"' % binascii.b2a_base64(data, newline=False) in native


def test_every_length_up_to_200(level):
    rng = random.Random(level)
    same_bodies([rng.randbytes(length) for length in range(201) for _ in range(3)])
    same_bodies([bytes([value]) * length for value in (0, 0x3f, 0xfb, 0xff) for length in range(201)])


def test_every_byte_value_at_every_offset(level):
    # each value at each place of a 3-byte group and of a 24-byte step, so every 6-bit value is in every lane
    same_bodies([b"\x55" * offset + bytes([value, 255 - value, value ^ 0xa5]) + b"\xaa" * 40
                 for value in range(256) for offset in range(0, 30, 1 if value % 17 == 0 else 7)])


def test_big_records(level):
    rng = random.Random(300 + level)
    same_bodies([os.urandom(rng.randrange(1000, 70000)) for _ in range(20)] + [b"\xff" * 65536, bytes(100001)])
