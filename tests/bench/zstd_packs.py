"""zstd on small records: one frame per record (`compression zstd`) against
one frame per newline-delimited pack (`simple_aggregation` + `compression
zstd`): bytes and CPU, in process, for BENCHMARKS.md ("zstd: the decision").

    .venv/bin/python -m tests.bench.zstd_packs
"""
import time

import orjson
import zstandard

from tests.bench.cost import container_logs

RECORDS = 20_000
PACK_SIZES = (25 * 1024, 1024 * 1024 - 1024)  # one PUT payload unit; about aggregation_maximum_record_size


def packs_of(records, cap):
    """Newline-delimited packs of at most `cap` bytes, as simple_aggregation makes them."""
    packs, current, size = [], [], 0
    for record in records:
        if current and size + len(record) + 1 > cap:
            packs.append(b"\n".join(current))
            current, size = [], 0
        current.append(record)
        size += len(record) + 1
    return packs + [b"\n".join(current)] if current else packs


def measure(name, compressor, items, records, raw):
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        frames = [compressor.compress(item) for item in items]
        best = min(best, time.process_time() - start)
    ratio = sum(map(len, frames)) / raw
    print(f"| {name} | {len(items)} | {ratio:.3f} | {best / records * 1e6:.2f} |")


def main():
    records = [orjson.dumps(record) for record in container_logs(RECORDS)]
    raw = sum(map(len, records))
    compressor = zstandard.ZstdCompressor(level=3)
    print(f"{RECORDS} container_logs records, {raw / RECORDS:.0f} B on average, zstd level 3, best of 3")
    print("| frames of | frames | size / raw | CPU µs per record |\n|---|---:|---:|---:|")
    measure("one record", compressor, records, RECORDS, raw)
    for cap in PACK_SIZES:
        measure(f"packs of {cap // 1024} KiB", compressor, packs_of(records, cap), RECORDS, raw)


if __name__ == "__main__":
    main()
