"""`compression zstd` over the fast path's EntryTable (zstd_frames.py,
csrc/fastjson_frames.c): the frames compress() makes, byte for byte, one per
record, with the table's sizes and the size limit on the frames; whatever the
C loop declines goes the tuple way, which compresses the same."""
import os
import random
import threading
from array import array

import pytest

from fluentbit_kinesis.config import Settings
from fluentbit_kinesis.pipeline import fastpath, zstd_frames
from fluentbit_kinesis.pipeline.compression import compressor, decompress
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.support.harness import make_chunk

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE or zstd_frames._framer() is None,
                                reason="fluentbit_kinesis._fastjson not built (make), or no zstandard cffi module")


def columns_of(payloads, gap=0):
    """(data, data_at, data_len, sizes) of payloads laid out one after the other, `gap` bytes apart,
    sizes as if each had a 16-byte key."""
    data, at = bytearray(), []
    for payload in payloads:
        data += os.urandom(gap)
        at.append(len(data))
        data += payload
    lengths = [len(p) for p in payloads]
    return bytes(data), array("I", at), array("I", lengths), array("I", [n + 16 for n in lengths])


def random_payloads(rng, count):
    kinds = [lambda: b"", lambda: os.urandom(rng.randrange(1, 700)),  # incompressible: frames grow
             lambda: b'{"log":"GET /api/v1/items?id=%d 200"}' % rng.randrange(10**6) * rng.randrange(1, 50),
             lambda: bytes(rng.randrange(3) for _ in range(rng.randrange(1, 4000)))]
    return [rng.choice(kinds)() for _ in range(count)]


@pytest.mark.parametrize("seed", range(6))
def test_frames_are_those_of_compress(seed):
    rng = random.Random(seed)
    payloads = random_payloads(rng, rng.randrange(1, 400))
    data, at, lengths, sizes = columns_of(payloads, gap=rng.choice([0, 3]))
    out, longest = zstd_frames.frames(data, at, lengths, sizes)
    zstd = compressor("zstd")
    frames = [bytes(out[a:a + n]) for a, n in zip(at, lengths)]
    assert frames == [zstd(p) for p in payloads]
    assert [decompress("zstd", f) for f in frames] == payloads
    assert list(sizes) == [len(f) + 16 for f in frames]
    assert longest == max(map(len, frames))
    assert sum(lengths) == len(out) and list(at) == [sum(lengths[:i]) for i in range(len(at))]


def test_large_records_take_several_blocks_in_one_frame():
    payloads = [os.urandom(300_000), b"x" * 1_100_000, b""]
    data, at, lengths, sizes = columns_of(payloads)
    out, _longest = zstd_frames.frames(data, at, lengths, sizes)
    zstd = compressor("zstd")
    assert [bytes(out[a:a + n]) for a, n in zip(at, lengths)] == [zstd(p) for p in payloads]


@pytest.mark.parametrize("damage", ["outside", "past_the_end", "size_short", "columns_short"])
def test_columns_that_do_not_fit_the_data_are_declined(damage):
    data, at, lengths, sizes = columns_of([b"abc" * 40, b"def" * 30])
    if damage == "outside":
        at[1] = len(data) + 1
    elif damage == "past_the_end":
        lengths[1] += 1
    elif damage == "size_short":
        sizes[0] = lengths[0] - 1
    else:
        del sizes[1]
    assert zstd_frames.frames(data, at, lengths, sizes) is None


def test_threads_compress_at_once_each_with_its_own_context():
    zstd = compressor("zstd")
    results, failures = {}, []

    def work(seed):
        rng = random.Random(seed)
        for _ in range(20):
            payloads = random_payloads(rng, 200)
            data, at, lengths, sizes = columns_of(payloads)
            out, _ = zstd_frames.frames(data, at, lengths, sizes)
            if [bytes(out[a:a + n]) for a, n in zip(at, lengths)] != [zstd(p) for p in payloads]:
                failures.append(seed)
        results[seed] = True

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and not failures


@pytest.mark.parametrize("key", [None, ["kubernetes", "pod_name"]])
def test_the_fast_path_gives_a_table_of_frames(key):
    rng = random.Random(3)
    records = [{"log": "line %d " % i + "x" * rng.randrange(0, 900), "kubernetes": {"pod_name": f"pod-{i % 5}"}}
               for i in range(600)]
    chunk = make_chunk(records)
    zstd = Settings(region="us-east-1", stream="s", partition_key=key, compression="zstd")
    plain = Settings(region="us-east-1", stream="s", partition_key=key)
    tabled = Shaper(zstd, tables=True).shape_chunk(chunk)
    listed = Shaper(zstd).shape_chunk(chunk)
    raw = Shaper(plain).shape_chunk(chunk)
    assert isinstance(tabled.entries, EntryTable) and isinstance(listed.entries, list)
    table = list(tabled.entries)
    assert [(d, e) for d, _k, _h, e in table] == [(d, e) for d, _k, e in listed.entries]
    assert [decompress("zstd", d) for d, _k, _h, _e in table] == [d for d, _k, _e in raw.entries]
    assert list(tabled.entries.sizes) == [len(d) + len(k.encode()) for d, k, _h, _e in table]


def test_a_frame_over_the_limit_sends_the_chunk_the_tuple_way():
    noise = os.urandom(1500).hex()  # about 3000 bytes that zstd cannot shrink below 1024
    records = [{"log": "a" * 3000}, {"log": noise}, {"log": "b" * 20}]
    settings = Settings(region="us-east-1", stream="s", compression="zstd", log_key="log",
                        max_record_bytes=1024)
    shaped = Shaper(settings, tables=True).shape_chunk(make_chunk(records))
    assert isinstance(shaped.entries, list)  # the tuple path: it rejects record by record
    assert [index for _d, _k, index in shaped.entries] == [0, 2]
    assert [index for index, *_ in shaped.rejected] == [1]
