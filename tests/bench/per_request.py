"""CPU of the work a flush does per chunk and per request besides the
records' bytes (issue 18), called directly: the lanes, pacing and shares of
a chunk of `count` entries over 256 shards (batching.Lanes, ShardLimiter:
a whole send's takes and answers, with a clock that refills between
chunks), and the scan of a 500-record PutRecords answer as Kinesis writes it
(56-digit sequence numbers) and as the bench sink does ("1").

    .venv/bin/python -m tests.bench.per_request [--tree DIR] [--count 8800] [--chunks 60]

`--tree`: import the plugin from another checkout (built), to compare two
builds in interleaved runs. Prints the median of the chunks' CPU
(`time.thread_time`), and the best of 7 rounds of 200 answer scans.
"""
import argparse
import os
import random
import statistics
import sys
import time
import timeit
from array import array


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", default=None)
    parser.add_argument("--count", type=int, default=8800, help="entries a chunk: 8800 for 250 B lines, 1000 for 2 KB")
    parser.add_argument("--chunks", type=int, default=60)
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, os.path.abspath(args.tree))
    print(f"lanes, pacing and shares: {_lanes(args.count, args.chunks):.0f} ns/entry ({args.count} entries a chunk, "
          f"256 shards)")
    for name, ns in _answers():
        print(f"answer scan, {name}: {ns:.0f} ns/record")


def _lanes(count, chunks):
    from fluentbit_kinesis.delivery.batching import Lanes
    from fluentbit_kinesis.delivery.pacing import ShardLimiter
    from fluentbit_kinesis.pipeline.entry_table import EntryTable
    now = [1000.0]
    limiter = ShardLimiter(clock=lambda: now[0])
    rng = random.Random(1)
    ids = [f"shardId-{i:012d}" for i in range(256)]
    table = EntryTable.from_entries([(b"x" * (330 if count > 2000 else 2700), f"k{i}", None, i) for i in range(count)])
    shards = [array("i", [rng.randrange(256) for _ in range(count)]) for _ in range(5)]
    spent = []
    for c in range(chunks + 5):  # the first 5: warm-up
        start = time.thread_time()
        lanes = Lanes(table, shards[c % 5], ids)
        while len(lanes):
            _group, counts = lanes.take(limiter, now[0], 500, 5 * 2 ** 20)
            limiter.answered(counts)
            if len(lanes.lanes) < len(ids):
                lanes.pending_shards()
        limiter.shares(lanes.shards)
        spent.append(time.thread_time() - start)
        now[0] += 2.0  # the buckets full again
    return statistics.median(spent[5:]) / count * 1e9


def _answers():
    from fluentbit_kinesis.delivery import answer_scan
    kinesis = b",".join(b'{"SequenceNumber":"49546986683135544286507457936321625675700192471156785%03d",'
                        b'"ShardId":"shardId-%012d"}' % (i, i % 256) for i in range(500))
    sink = b",".join(b'{"SequenceNumber":"1","ShardId":"shardId-%012d"}' % (i % 256) for i in range(500))
    for name, records in (("Kinesis-shaped", kinesis), ("bench sink", sink)):
        data = b'{"FailedRecordCount":0,"Records":[' + records + b'],"EncryptionType":"KMS"}'
        assert answer_scan.native_failed_entries(data, 500) == 0
        best = min(timeit.repeat(lambda: answer_scan.native_failed_entries(data, 500), number=200, repeat=7))
        yield name, best / 200 / 500 * 1e9


if __name__ == "__main__":
    main()
