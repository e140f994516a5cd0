"""CPU per record of `compression zstd` in process: one compress() call per
record (the reference, as before issue 18's batching) against
compression.compress_all (batches per C call), on the same payloads,
interleaved; then Shaper.shape_chunk with none / zstd per record / zstd in
batches / zstd over the fast path's table (zstd_frames, as the plugin shapes:
tables=True); then other zstd levels, for the record (their bytes differ).

    .venv/bin/python -m tests.bench.compress_zstd [--rounds 11] [--records 8000]

Payloads: tests.bench.cost.container_logs shaped by the fast path (~260 B).
time.thread_time of each call, best of the rounds.
"""
import argparse
import time

import zstandard

from fluentbit_kinesis import config
from fluentbit_kinesis.pipeline.compression import compress_all, compressor
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.bench.cost import container_logs
from tests.support.harness import make_chunk


def _best(calls, rounds):
    """{name: best seconds}, the calls interleaved round by round."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.thread_time()
            call()
            best[name] = min(best[name], time.thread_time() - started)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--records", type=int, default=8000)
    args = parser.parse_args()
    data = make_chunk(container_logs(args.records))
    plain = Shaper(config.Settings(compression="none"))
    payloads = [entry[0] for entry in plain.shape_chunk(data).entries]
    zstd = compressor("zstd")
    assert compress_all(zstd, payloads) == list(map(zstd, payloads))
    per_record = Shaper(config.Settings(compression="zstd"))
    del per_record.compress.many  # one call per record, as before
    batched = Shaper(config.Settings(compression="zstd"))
    tabled = Shaper(config.Settings(compression="zstd"), tables=True)
    us = 1e6 / len(payloads)
    print(f"# {len(payloads)} payloads of {sum(map(len, payloads)) / len(payloads):.0f} B, best of {args.rounds}")
    best = _best({"compress per record": lambda: list(map(zstd, payloads)),
                  "compress_all": lambda: compress_all(zstd, payloads),
                  "shape_chunk none": lambda: plain.shape_chunk(data),
                  "shape_chunk zstd per record": lambda: per_record.shape_chunk(data),
                  "shape_chunk zstd batched": lambda: batched.shape_chunk(data),
                  "shape_chunk zstd table": lambda: tabled.shape_chunk(data)}, args.rounds)
    for name, seconds in best.items():
        print(f"{name:30s} {seconds * us:6.2f} µs/record")
    raw = sum(map(len, payloads))
    levels = {level: zstandard.ZstdCompressor(level=level).multi_compress_to_buffer for level in (3, 2, 1, -1)}
    best = _best({level: (lambda call=call: call(payloads)) for level, call in levels.items()}, args.rounds)
    for level, call in levels.items():
        ratio = sum(len(frame) for frame in call(payloads)) / raw
        print(f"level {level:2d} (batched)              {best[level] * us:6.2f} µs/record, size ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
