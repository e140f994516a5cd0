"""Nanoseconds per record of the native fast path's two per-byte kernels,
called directly (no Python around them): fj_convert over chunks of container
log lines (default settings: the whole record as JSON, no partition key
path), and fj_body_at over the converted payloads as an EntryTable's columns
with 16-hex-digit random partition keys, 500 entries a request.

    .venv/bin/python -m tests.bench.native_kernels [--tree DIR] [--size 250] [--repeat 30] [--level 1]

`--tree`: import _fastjson from another checkout (built), so two builds can
be compared in interleaved runs. `--level`: the SIMD kernels at most at that
level (1 scalar, 2 portable, 3 AVX2; csrc/fastjson_simd.h). Prints the best
of `repeat` passes for each.
"""
import argparse
import os
import random
import sys
import time
from array import array


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", default=None)
    parser.add_argument("--size", type=int, default=250)
    parser.add_argument("--count", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--level", type=int, default=0)
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, os.path.abspath(args.tree))
    from fluentbit_kinesis._fastjson import ffi, lib
    if args.level:
        lib.fj_simd_limit(args.level)
    from tests.bench.cpu import container_logs
    from tests.support.harness import make_chunk
    chunk = make_chunk(container_logs(args.count, args.size))
    payloads, convert_ns = _convert(ffi, lib, chunk, args.repeat)
    body_ns = _body_at(ffi, lib, payloads, args.repeat)
    print(f"fj_convert {convert_ns / len(payloads):.1f} ns/record  "
          f"fj_body_at {body_ns / len(payloads):.1f} ns/record  ({len(payloads)} records, {len(chunk)} B)")


def _convert(ffi, lib, chunk, repeat):
    source = ffi.from_buffer("uint8_t[]", chunk)
    out_cap, records_cap = 6 * len(chunk) + 64, len(chunk) // 3 + 1
    out, records = ffi.new("uint8_t[]", out_cap), ffi.new("uint32_t[]", 5 * records_cap)
    used, empty = ffi.new("size_t[2]"), ffi.new("uint8_t[]", 1)
    lens = ffi.new("uint32_t[]", 1)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        rc = lib.fj_convert(source, len(chunk), empty, lens, -1, empty, -1, 0,
                            out, out_cap, records, records_cap, used, used + 1)
        best = min(best, time.perf_counter_ns() - start)
        assert rc == 0
    fields = ffi.unpack(records, 5 * used[1])
    written = ffi.buffer(out, used[0])[:]
    return [written[at:at + n] for at, n in zip(fields[0::5], fields[1::5])], best


def _body_at(ffi, lib, payloads, repeat):
    rng = random.Random(7)
    keys = [os.urandom(8).hex().encode() for _ in range(len(payloads))]
    rng.shuffle(keys)
    data, key_bytes = b"".join(payloads), b"".join(keys)
    data_len, key_len = array("I", map(len, payloads)), array("I", map(len, keys))
    data_at, key_at = array("I", [0]) * len(payloads), array("I", [0]) * len(keys)
    for i in range(1, len(payloads)):
        data_at[i] = data_at[i - 1] + data_len[i - 1]
        key_at[i] = key_at[i - 1] + key_len[i - 1]
    indices = [array("I", range(start, min(start + 500, len(payloads)))) for start in range(0, len(payloads), 500)]
    field = b'"StreamName":"bench"'
    args = (field, len(field), data, len(data), ffi.from_buffer("uint32_t[]", data_at),
            ffi.from_buffer("uint32_t[]", data_len), key_bytes, len(key_bytes),
            ffi.from_buffer("uint32_t[]", key_at), ffi.from_buffer("uint32_t[]", key_len),
            ffi.NULL, 0, ffi.NULL, ffi.NULL, len(payloads))
    cap = 2 * len(data) + 100 * 500 + 4096
    out, used = ffi.new("uint8_t[]", cap), ffi.new("size_t *")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for request in indices:
            rc = lib.fj_body_at(*args, ffi.from_buffer("uint32_t[]", request), len(request), out, cap, used)
            assert rc == 0
        best = min(best, time.perf_counter_ns() - start)
    return best


if __name__ == "__main__":
    main()
