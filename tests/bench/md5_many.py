"""MB/s of the MD5 that ends each KPL aggregate (issue 18), called directly:
fj_md5_many_at over `count` random messages of about `size` bytes (an
aggregate's, by default), at each level the CPU has: scalar (one message at
a time), portable vectors (8 lanes, SSE2 or NEON), AVX2 (8 lanes).

    .venv/bin/python -m tests.bench.md5_many [--size 125000] [--count 40] [--repeat 20]

Prints the best of `repeat` passes for each level; --spread adds that much
random variation to the lengths (a pack's last aggregates are smaller).
"""
import argparse
import os
import random
import time
from array import array

LEVELS = {1: "scalar", 2: "portable", 3: "avx2"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=125000)
    parser.add_argument("--spread", type=int, default=5000)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    from fluentbit_kinesis._fastjson import ffi, lib
    rng = random.Random(7)
    lens = array("Q", (max(0, args.size + rng.randrange(-args.spread, args.spread + 1)) for _ in range(args.count)))
    at = array("Q", [0]) * args.count
    for i in range(1, args.count):
        at[i] = at[i - 1] + lens[i - 1]
    data = os.urandom(sum(lens))
    out = ffi.new("uint8_t[]", 16 * args.count)
    c_at, c_lens = ffi.from_buffer("uint64_t[]", at), ffi.from_buffer("uint64_t[]", lens)
    figures = []
    for level, name in LEVELS.items():
        if level > lib.fj_simd_best():
            continue
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter_ns()
            assert lib.fj_md5_many_at(level, data, len(data), c_at, c_lens, args.count, out) == 0
            best = min(best, time.perf_counter_ns() - start)
        figures.append(f"{name} {len(data) / best * 1e3:.0f} MB/s")
    print("  ".join(figures) + f"  ({args.count} messages, {len(data)} B)")


if __name__ == "__main__":
    main()
