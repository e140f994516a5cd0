"""The PutRecords body built in C (csrc/fastjson_body.c) against the Python
reference (request_body.python_body): the same bytes for the entries of every
fuzz-corpus chunk under every option mix, for random entries (keys with
quotes, backslashes and control characters, hash keys or not, empty data),
and a decline, never other bytes, where the C code does not go."""
import base64
import random

import orjson
import pytest

from fluentbit_kinesis.pipeline import request_body
from fluentbit_kinesis.pipeline.aggregation import plain
from tests.support import differential

pytestmark = pytest.mark.skipif(not request_body.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")

STREAM = b'"StreamName":"bench"'
ARN = b'"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s"'
FILES = sorted(p for p in differential.CORPUS.iterdir() if p.is_file())


def same_body(entries, stream_field=STREAM):
    native = request_body.native_body(stream_field, entries)
    reference = request_body.python_body(stream_field, entries)
    assert native is not None, "the native body declined"
    assert native == reference
    return native


def test_corpus_entries_give_the_same_body():
    """Every corpus file's entries under its options and every option mix."""
    natives = declined = 0
    for path in FILES:
        options, data = differential.split(path.read_bytes())
        for variant in [options] + [(options & 0xC0) | low for low in range(64)]:
            shaper = differential.shaper_for(differential.settings_for(variant))
            entries = plain(differential.python_path(shaper, data)[1].entries)
            if not entries:
                continue
            if "".join(e[1] for e in entries).isascii():
                same_body(entries)
                natives += 1
            else:  # declined: the reference's bytes all the same
                assert request_body.native_body(STREAM, entries) is None
                assert request_body.body(STREAM, entries) == request_body.python_body(STREAM, entries)
                declined += 1
    assert natives > 10 * len(FILES)


def random_key(rng):
    alphabet = 'ab"\\/\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f -_.'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))


def random_entries(rng, count, hash_keys):
    entries = []
    for index in range(count):
        data = rng.randbytes(rng.choice((0, 1, 2, 3, rng.randrange(0, 3000))))
        hash_key = None
        if hash_keys == "all" or (hash_keys == "some" and rng.random() < 0.5):
            hash_key = str(rng.randrange(2 ** 128)) if rng.random() < 0.9 else ""
        entries.append((data, random_key(rng), hash_key, index))
    return entries


@pytest.mark.parametrize("seed", range(40))
def test_random_entries_give_the_same_body(seed):
    rng = random.Random(seed)
    hash_keys = ("none", "some", "all")[seed % 3]
    entries = random_entries(rng, rng.randrange(1, 600), hash_keys)
    body = same_body(entries, ARN if seed % 2 else STREAM)
    # and it reads back as the entries
    records = orjson.loads(body)["Records"]
    assert [base64.b64decode(r["Data"]) for r in records] == [e[0] for e in entries]
    assert [r["PartitionKey"] for r in records] == [e[1] for e in entries]
    assert [r.get("ExplicitHashKey") for r in records] == [e[2] for e in entries]


def test_declines_what_it_does_not_cover():
    ascii_entry = (b"x", "pod-1", None, 0)
    for odd in [(b"x", "pod-é", None, 1),         # a key that is not ASCII
                (b"x", "pod", "é", 1),            # a hash key that is not ASCII
                ("text", "pod", None, 1),         # data that is not bytes
                (b"x", 7, None, 1)]:              # a key that is not a str
        assert request_body.native_body(STREAM, [ascii_entry, odd]) is None
    non_ascii = [ascii_entry, (b"x", "pod-é", None, 1)]
    assert request_body.body(STREAM, non_ascii) == request_body.python_body(STREAM, non_ascii)
    assert request_body.native_body(STREAM, []) is None


def call(entries_data, key_lens, data_lens, cap, keys=b"kk"):
    ffi, lib = request_body.ffi, request_body.lib
    data = b"".join(entries_data)
    used = ffi.new("size_t *")
    out = ffi.new("uint8_t[]", max(cap, 1))
    rc = lib.fj_put_records_body(ffi.from_buffer("uint8_t[]", STREAM), len(STREAM),
                                 ffi.from_buffer("uint8_t[]", data), len(data),
                                 ffi.new("uint32_t[]", data_lens), ffi.from_buffer("uint8_t[]", keys),
                                 len(keys), ffi.new("uint32_t[]", key_lens), ffi.NULL, 0, ffi.NULL,
                                 len(data_lens), out, cap, used)
    return rc, bytes(ffi.buffer(out, used[0])) if rc == 0 else None


def test_lengths_that_do_not_match_the_buffers_are_declined_and_room_is_checked():
    rc, body = call([b"abc", b"de"], [1, 1], [3, 2], 1000)
    assert rc == 0 and body == request_body.python_body(STREAM, [(b"abc", "k", None, 0), (b"de", "k", None, 1)])
    assert call([b"abc", b"de"], [1, 1], [3, 3], 1000)[0] == -1   # past the data
    assert call([b"abc", b"de"], [1, 1], [3, 1], 1000)[0] == -1   # data left over
    assert call([b"abc", b"de"], [1, 2], [3, 2], 1000)[0] == -1   # past the keys
    assert call([b"abc", b"de"], [1, 1], [3, 2], len(body) - 1)[0] == -2  # one byte short
    # a key needs room for its worst case (6 bytes a character) before it is written
    assert call([b"abc", b"de"], [1, 1], [3, 2], len(body) + 6)[0] == 0
