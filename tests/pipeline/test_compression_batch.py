"""zstd in batches (compression.compress_all, what the fast path calls)
against one compress() call per record, the reference: the same frames byte
for byte, and the same ShapedChunk from the fast path as from the Python path
(which compresses record by record) on the fuzz corpus and random chunks,
rejects for size included."""
import base64
import os
import random

import pytest

from fluentbit_kinesis.pipeline import compression, fastpath
from fluentbit_kinesis.pipeline.compression import compress_all, compressor, decompress
from tests.support import differential
from tests.support.harness import make_chunk

needs_fastpath = pytest.mark.skipif(not fastpath.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")
CORPUS = sorted(p for p in differential.CORPUS.iterdir() if p.is_file())


def random_payloads(rng, count):
    kinds = [lambda: b"", lambda: os.urandom(rng.randrange(1, 600)),  # incompressible
             lambda: (b"GET /api/v1/items?id=%d 200 " % rng.randrange(10**6)) * rng.randrange(1, 40),
             lambda: bytes(rng.randrange(4) for _ in range(rng.randrange(1, 3000)))]
    return [rng.choice(kinds)() for _ in range(count)]


@pytest.mark.parametrize("seed", range(6))
def test_batches_make_the_frames_of_one_call_per_record(seed, monkeypatch):
    rng = random.Random(seed)
    monkeypatch.setattr(compression, "ZSTD_BATCH", rng.choice([1, 3, 64, 1024]))
    zstd = compressor("zstd")
    payloads = random_payloads(rng, rng.randrange(0, 300))
    frames = compress_all(zstd, payloads)
    assert frames == [zstd(payload) for payload in payloads]
    assert all(type(frame) is bytes for frame in frames)
    assert [decompress("zstd", frame) for frame in frames] == payloads


def test_large_records_and_many_of_them():
    zstd = compressor("zstd")
    big = [os.urandom(300_000), b"x" * 1_100_000, b""]  # several zstd blocks, one frame each
    assert compress_all(zstd, big) == [zstd(payload) for payload in big]
    many = [b"line %d" % i for i in range(compression.ZSTD_BATCH * 2 + 5)]
    assert compress_all(zstd, many) == [zstd(payload) for payload in many]
    assert compress_all(zstd, []) == []


@pytest.mark.parametrize("name", ["zlib", "gzip"])
def test_codecs_without_batches_compress_one_by_one(name):
    codec = compressor(name)
    payloads = [b"", b"abc" * 50, os.urandom(100)]
    assert not hasattr(codec, "many") and compress_all(codec, payloads) == [codec(p) for p in payloads]


@needs_fastpath
@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_fuzz_corpus_with_zstd_fast_and_python_paths_agree(path):
    _options, data = differential.split(path.read_bytes())
    for variant in range(0, 256, 9):  # keys, log_key, newline, invalid_utf8, 1024 B limit
        differential.compare(differential.settings_for(variant, compression="zstd"), data)


def random_record(rng):
    size = rng.choice([0, 10, 250, 1000, 1020, 1100, 3000])
    text = "".join(rng.choice("abcdefghij ") for _ in range(size))
    if rng.random() < 0.3:  # incompressible: larger than the limit once compressed
        text = os.urandom(size // 2).hex()
    record = {"log": text, "kubernetes": {"pod_name": f"pod-{rng.randrange(5)}"}}
    if rng.random() < 0.1:
        del record["log"]
    return record


@needs_fastpath
@pytest.mark.parametrize("seed", range(8))
def test_random_chunks_with_zstd_fast_and_python_paths_agree(seed):
    rng = random.Random(seed)
    data = make_chunk([random_record(rng) for _ in range(rng.randrange(1, 200))])
    accepted = [differential.compare(differential.settings_for(variant, compression="zstd"), data)
                for variant in (0, 1, 4, 8, 128, 129, 128 + 4, 128 + 32)]
    assert any(accepted)


@needs_fastpath
def test_records_over_the_limit_after_compression_are_rejected_as_before():
    # the limit counts compressed bytes: 3000 "a" fit, 2000 characters of base64 noise do not
    noise = base64.b64encode(os.urandom(1500)).decode()
    records = [{"log": "a" * 3000}, {"log": noise}, {"log": "b" * 20}, {"other": 1}]
    settings = differential.settings_for(128 + 4, compression="zstd")  # log_key log, 1024 B per record
    assert differential.compare(settings, make_chunk(records))
    shaped = differential.Shaper(settings).shape_chunk(make_chunk(records))
    assert shaped.path == "fast"
    assert [index for _, _, index in shaped.entries] == [0, 2]
    assert [decompress("zstd", payload) for payload, _, _ in shaped.entries] == [b"a" * 3000, b"b" * 20]
    assert [index for index, *_ in shaped.rejected] == [1, 3]
    too_big, no_log = shaped.dead_letters()
    assert "limit is 1024" in too_big.reason and too_big.payload == compressor("zstd")(noise.encode())
    assert "log_key" in no_log.reason and no_log.payload is None and no_log.original[0] == "msgpack"
