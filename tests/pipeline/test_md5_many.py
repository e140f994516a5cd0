"""MD5 of many messages at once (csrc/fastjson_md5_many.c, issue 18) against
hashlib.md5, at every level this CPU runs (scalar, portable vectors, AVX2):
every length 0..300 around the 64-byte blocks and the padding that takes a
second block, big messages, batches of 1 to 20 mixed lengths so lanes end at
different blocks and are refilled; then KPL aggregation, whose trailers it
writes, against the Python reference with each level forced."""
import hashlib
import os
import random
from array import array

import pytest

from fluentbit_kinesis.pipeline import kpl_native
from tests.pipeline import test_aggregation_native as kpl
from tests.support import simd
from tests.support.simd import SCALAR

pytestmark = pytest.mark.skipif(not kpl_native.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")


def md5_many(level, messages):
    """fj_md5_many_at's digests, or its return code when not 0."""
    from fluentbit_kinesis._fastjson import ffi, lib
    at, lens, data = array("Q"), array("Q"), b"".join(messages)
    for message in messages:
        at.append(sum(lens))
        lens.append(len(message))
    out = ffi.new("uint8_t[]", 16 * len(messages) + 1)
    rc = lib.fj_md5_many_at(level, data, len(data), ffi.from_buffer("uint64_t[]", at),
                            ffi.from_buffer("uint64_t[]", lens), len(messages), out)
    if rc:
        return rc
    digests = ffi.buffer(out, 16 * len(messages))[:]
    return [digests[16 * i:16 * i + 16] for i in range(len(messages))]


def expected(messages):
    return [hashlib.md5(m).digest() for m in messages]


@pytest.fixture(params=simd.levels(), ids=simd.NAMES.get)
def level(request):
    return request.param


def test_every_length_up_to_300(level):
    rng = random.Random(level)
    messages = [rng.randbytes(n) for n in range(301)]
    assert md5_many(level, messages) == expected(messages)
    rng.shuffle(messages)  # other neighbours in the lanes
    assert md5_many(level, messages) == expected(messages)
    for n in range(301):  # alone: the scalar finish from its first block
        assert md5_many(level, [messages[n]]) == expected([messages[n]])


def test_batches_of_mixed_lengths(level):
    rng = random.Random(100 + level)
    for _ in range(300):
        count = rng.randrange(1, 21)
        messages = [rng.randbytes(rng.choice((rng.randrange(0, 300), rng.randrange(0, 5000)))) for _ in range(count)]
        assert md5_many(level, messages) == expected(messages)
    assert md5_many(level, []) == []


def test_big_messages_among_small_ones(level):
    rng = random.Random(200 + level)
    for _ in range(4):
        messages = [os.urandom(rng.randrange(100_000, 140_000)) for _ in range(rng.randrange(1, 20))]
        messages += [b"", b"x" * 55, b"y" * 56, b"z" * 64]
        rng.shuffle(messages)
        assert md5_many(level, messages) == expected(messages)


def test_the_rfc_suite(level):
    messages = [b"", b"a", b"abc", b"message digest", b"abcdefghijklmnopqrstuvwxyz",
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", b"1234567890" * 8]
    assert [d.hex() for d in md5_many(level, messages)] == [
        "d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661", "900150983cd24fb0d6963f7d28e17f72",
        "f96b697d7cb7938d525a2f31aaf161d0", "c3fcd3d76192e4007dfb496cca67e13b", "d174ab98d277d9f5a5611c2c9f419d9f",
        "57edf4a22be3c955ac49da2e2107b67a"]


def test_a_level_the_cpu_lacks_or_a_message_outside_the_buffer():
    from fluentbit_kinesis._fastjson import ffi, lib
    assert md5_many(0, [b"a"]) == -1 and md5_many(lib.fj_simd_best() + 1, [b"a"]) == -1
    at, lens, out = array("Q", [2]), array("Q", [2]), ffi.new("uint8_t[]", 16)
    assert lib.fj_md5_many_at(SCALAR, b"abc", 3, ffi.from_buffer("uint64_t[]", at),
                              ffi.from_buffer("uint64_t[]", lens), 1, out) == -1


@pytest.fixture
def forced(level):
    with simd.forced(level):
        yield level


@pytest.mark.parametrize("seed", range(3))
def test_kpl_aggregates_with_the_level_forced(forced, seed):
    rng = random.Random(seed)
    aggregates = 0
    for mix in kpl.MIXES:
        listed = kpl.listed_shards(rng.choice(kpl.SHARD_COUNTS))
        agg, keyless = kpl.aggregator(mix, listed)
        entries = kpl.same_entries(agg, keyless, kpl.random_chunk(rng, rng.choice((2, 40, 700)), mix))
        aggregates += sum(type(e[3]) is kpl.AggregateEvents for e in entries)
    assert aggregates > 20  # enough to fill the lanes
