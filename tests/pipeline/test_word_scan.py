"""The native code's word-at-a-time loops (csrc/fastjson_scan.h: strings
scanned 16 bytes a step where the CPU has vectors, then 8, the last word
overlapping; base64 in
fastjson_body.c twelve bytes a step) against the Python references, at
every place a word boundary can fall: a byte that needs work at every
position of a run, every byte value at every offset mod 8, invalid UTF-8
across word boundaries, every length up to past two words and a half."""
import binascii
import random
from array import array

import msgpack
import pytest

from fluentbit_kinesis.pipeline import entry_kernels, entry_kernels_native, fastpath, request_body
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from tests.pipeline.test_fastpath import MODES, check

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")

RAW_TEXT = [(None, None, False), (None, "log", False)]  # the JSON writer, and the raw log_key text
# bytes that end a plain run: escapes, the last plain ones around them, UTF-8 (whole, cut, invalid)
SPECIALS = [b"\x00", b"\x1f", b" ", b'"', b"\\", b"!", b"[", b"]", b"\x7f", b"\xc3\xa9", b"\xe2\x82\xac",
            b"\xf0\x9f\x98\x80", b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xff", b"\xc0\xaf"]


def chunk_of(values, key="log"):
    """One event per value, as str (not bin), so invalid UTF-8 is text to replace."""
    return b"".join(msgpack.packb([0, {key: value, "n": 1}], use_bin_type=False) for value in values)


def test_a_special_byte_at_every_position_of_a_run():
    texts = [b"a" * at + special + b"b" * (length - at)
             for special in SPECIALS for length in range(24, 52) for at in range(0, length)]
    check(chunk_of(texts), modes=RAW_TEXT)


def test_every_byte_value_at_every_offset_mod_8_and_16():
    texts = [b"x" * offset + bytes([value]) + b"y" * tail
             for value in range(256) for offset in range(34) for tail in (0, 1, 7, 8, 9, 15, 16, 17)]
    for start in range(0, len(texts), 4000):
        check(chunk_of(texts[start:start + 4000]), modes=RAW_TEXT)


def test_invalid_utf8_across_word_boundaries():
    sequences = [b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98",
                 b"\xe0\x80\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\x80\x80", b"\xfe\xff"]
    texts = [b"p" * before + seq + b"q" * after
             for seq in sequences for before in range(0, 36) for after in (0, 1, 3, 8, 13, 16, 29)]
    check(chunk_of(texts), modes=RAW_TEXT)


def test_every_length_from_0_to_56():
    rng = random.Random(8)
    texts = []
    for length in range(57):
        texts.append(b"a" * length)
        texts.append(bytes(rng.randrange(0x20, 0x7f) for _ in range(length)))
        if length:
            for at in (0, length // 2, length - 1):
                for special in (b'"', b"\n", b"\xc3\xa9"[:1], b"\xff"):
                    texts.append(b"a" * at + special + b"a" * (length - at - 1))
    check(chunk_of(texts), modes=RAW_TEXT)


def test_keys_of_every_length_and_special_position():
    """Map keys go by another writer (the ',' and ':' with them) and a UTF-8 check of their own."""
    keys = [("k" * length) for length in range(57)]
    keys += ["k" * at + special + "k" * (length - at) for special in ('"', "\\", "\n", "\x7f", "é", "€", "😀")
             for length in (7, 8, 9, 16, 17, 23, 31, 32, 33, 47) for at in range(length + 1)]
    records = [{key: "v", "z" + key: {key: [key]}} for key in keys]
    check(b"".join(msgpack.packb([0, record]) for record in records), modes=MODES)


def test_invalid_utf8_keys_still_go_to_python():
    for at, after in ((at, after) for at in range(0, 40) for after in (3, 40 - at)):
        key = b"k" * at + b"\xff" + b"k" * after
        assert fastpath.chunk_payloads(msgpack.packb([0, {key: 1}], use_bin_type=False)) is None


def test_base64_of_every_length_against_binascii():
    rng = random.Random(64)
    entries = [(rng.randbytes(length), "k", None, 0) for length in range(65) for _ in range(4)]
    entries += [(bytes([value]) * length, "k", None, 0) for value in (0, 0xff) for length in range(65)]
    native = request_body.native_body(b'"StreamName":"s"', entries)
    assert native == request_body.python_body(b'"StreamName":"s"', entries)
    for data, *_ in entries:  # each there, as binascii writes it
        assert b'"Data":"%b"' % binascii.b2a_base64(data, newline=False) in native


@pytest.mark.skipif(not entry_kernels_native.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")
def test_body_at_keys_and_data_of_every_length():
    rng = random.Random(40)
    keys = ["k" * length for length in range(41)]
    keys += ["k" * at + special + "k" * (16 - at) for special in ('"', "\\", "\x01", "é", "😀") for at in range(17)]
    table = EntryTable.from_entries([(rng.randbytes(i % 65), key, None, i) for i, key in enumerate(keys)])
    indices = array("I", range(table.count))
    assert entry_kernels_native.body_at(b'"StreamName":"s"', table, indices) == \
        entry_kernels.body_at_reference(b'"StreamName":"s"', table, indices)
