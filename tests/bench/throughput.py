"""At the stream's limit (issue 17): goodput and throttles against a front
that enforces the per-shard limits (tests/support/limited_kinesis.py: 1,000
records/s and 1 MiB/s per shard, one second of burst, the service's
per-entry ProvisionedThroughputExceededException), with a backlog far larger
than the stream can take.

Each producer is bin/kinesis.so in the ABI test host (flushes as Fluent Bit
runs them; `workers 2` as two flushes at once) or, with --fluent-bit, a real
Fluent Bit tailing the backlog from a file. Figures, from what the front
stored and refused:
  goodput     the time the stream needed at its binding limit (its busiest
              shard, records or bytes, less the one second of burst) over the
              time taken from the first call to the last record stored
  throttled   entries refused per entry stored (an aggregate is one entry)
  hot shard   the other shards' records: when the last one was stored, and
              how many times the time they would take alone that is (their
              busiest shard at its limit)
  steady      the busiest shard's use of its limit over the middle 60% of the
              run (what a producer's start-up, a real Fluent Bit's first small
              chunks, does not count in)
  middle      for two producers: each one's part of the stream's capacity
              over the middle 60% of the run
  exactly     every record found once; no aggregate a KCL consumer drops

    .venv/bin/python -m tests.bench.throughput [--only plain,two] [--scale 0.5]
                                               [--fluent-bit PATH]
"""
import argparse
import collections
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.cpu import container_logs  # noqa: E402
from tests.bench import producers  # noqa: E402
from tests.support.limited_kinesis import MIB, LimitedKinesisServer, ShardLimits, even_ranges  # noqa: E402

LIMIT_RECORDS = 1000

# name: (shards, round trip s, options, records per producer, producers, workers, keys)
SCENARIOS = {
    "plain": (4, 0.0, {}, 120_000, 1, 1, None),
    "partition_key": (4, 0.0, {"partition_key": "kubernetes->pod_name"}, 120_000, 1, 1, None),
    "aggregation+partition_key": (4, 0.0, {"aggregation": "true", "partition_key": "kubernetes->pod_name"},
                                  400_000, 1, 1, None),
    "workers 2": (4, 0.0, {}, 120_000, 1, 2, None),
    "1 shard, 30 ms round trip": (1, 0.030, {}, 30_000, 1, 1, None),
    "two producers": (4, 0.0, {}, 120_000, 2, 1, None),
    "hot shard 70%": (4, 0.0, {"partition_key": "kubernetes->pod_name"}, 45_000, 1, 1, "hot"),
}
SHORT = {"plain": "plain", "partition_key": "partition_key", "aggregation": "aggregation+partition_key",
         "workers": "workers 2", "rtt": "1 shard, 30 ms round trip", "two": "two producers",
         "hot": "hot shard 70%"}


def records_for(producer, count, shards, keys):
    """Container-log records, each with a unique (p, n); keys "hot": 70% of them
    on one pod, the rest on pods of the other shards."""
    records = container_logs(count, 250, seed=sum(map(ord, producer)))
    if keys == "hot":
        ranges = even_ranges(shards)

        def shard_of(pod):
            point = int.from_bytes(hashlib.md5(pod.encode()).digest(), "big")
            return next(i for i, (_, low, high) in enumerate(ranges) if low <= point <= high)
        hot = "hot-pod"
        cold = [f"pod-{i}" for i in range(400) if shard_of(f"pod-{i}") != shard_of(hot)][:30]
        for i, record in enumerate(records):
            record["kubernetes"]["pod_name"] = hot if i % 10 < 7 else cold[i % len(cold)]
    for i, record in enumerate(records):
        record["p"] = producer
        record["n"] = i
    return records


def units(stored, data):
    """Seconds of a shard's capacity that `stored` entries of `data` bytes take: the binding limit."""
    return max(stored / LIMIT_RECORDS, data / MIB)


def measure(front, stream, names, expected):
    """The figures of one run, from what the front stored and refused."""
    first = min(front.first_call.values()) - front.start
    last = max(front.last_stored.values()) - front.start
    totals = front.totals()
    stored = sum(t[0] for t in totals.values())
    throttled = sum(t[2] for t in totals.values())
    busiest = max(totals, key=lambda shard: units(totals[shard][0], totals[shard][1]))
    need = units(*totals[busiest][:2]) - 1.0  # the first second's burst is free
    row = {"seconds": last - first, "goodput": need / (last - first), "stored": stored,
           "throttled": throttled / stored, "busiest": busiest,
           "busiest_throttled": totals[busiest][2] / max(1, totals[busiest][0])}
    row["others_done"] = max((s for (s, _, shard), c in front.timeline.items() if shard != busiest and c[0]),
                             default=0) + 1 - first
    # what the other shards' records would take alone: their busiest at its limit (the burst is free)
    row["others_alone"] = max((units(*t[:2]) - 1.0 for shard, t in totals.items() if shard != busiest),
                              default=0.0)
    low, high = int(first + 0.2 * (last - first)), int(last - 0.2 * (last - first))
    shards = len(front.streams[stream].ranges)
    steady = front.totals(first=low, last=high - 1).get(busiest, [0, 0, 0])
    row["steady"] = units(steady[0], steady[1]) / max(1, high - low)  # the busiest shard, middle 60%
    for name in names:
        middle = front.totals(producer=name, first=low, last=high - 1)
        row[f"middle {name}"] = sum(units(s, b) for s, b, _ in middle.values()) / (shards * max(1, high - low))
    row.update(exactly(front.contents(stream), expected))
    if os.environ.get("BENCH_TIMELINE"):
        timeline(front, names)
    return row


def timeline(front, names):
    """Per second and producer: entries stored / throttled (BENCH_TIMELINE=1)."""
    seconds = sorted({key[0] for key in front.timeline})
    for second in seconds:
        parts = []
        for name in names:
            cells = [front.timeline.get((second, name, shard), [0, 0, 0]) for shard in sorted(front.buckets_seen())]
            parts.append(" ".join(f"{c[0]:4d}/{c[2]:<3d} {c[1] / 1000:5.0f}kB" for c in cells))
        print(f"<!-- {second:3d} " + " | ".join(parts) + " -->")


def exactly(contents, expected):
    seen = collections.Counter()
    for record in contents.records:
        body = json.loads(record.data)
        seen[(body["p"], body["n"])] += 1
    missing = sum(1 for key in expected if key not in seen)
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    return {"missing": missing, "duplicated": duplicated, "unexpected": len(set(seen) - expected),
            "dropped_aggregates": contents.dropped_aggregates, "aggregates": contents.aggregates}


def run(name, scale, fluent_bit, tmp):
    shards, latency, options, count, producer_count, workers, keys = SCENARIOS[name]
    count = int(count * scale)
    server = LimitedKinesisServer(ShardLimits(LIMIT_RECORDS, MIB, burst=1.0), latency).start()
    stream = server.front.create_stream("bench", shards)
    names = [f"producer-{chr(97 + i)}" for i in range(producer_count)]
    backlogs = {name: records_for(name, count, shards, keys) for name in names}
    expected = {(name, i) for name in names for i in range(count)}
    settings = {"region": "us-east-1", "stream": stream, "endpoint": server.url, **options}
    try:
        if fluent_bit:
            producers.with_fluent_bit(fluent_bit, settings, backlogs, workers, server.front, tmp)
        else:
            producers.with_host(settings, backlogs, workers, server.front, tmp)
        return measure(server.front, stream, names, expected)
    finally:
        server.stop()


def report(name, row, driver):
    middle = " / ".join(f"{v:.2f}" for k, v in row.items() if k.startswith("middle ")) if "two" in name else ""
    once = "yes" if not (row["missing"] or row["duplicated"] or row["unexpected"]) else \
        f"NO: {row['missing']} missing, {row['duplicated']} twice"
    kcl = f"{row['dropped_aggregates']} of {row['aggregates']}" if row["aggregates"] else "-"
    hot = (f" (hot shard: {row['busiest_throttled']:.3f}; other shards done at {row['others_done']:.1f} s, "
           f"{row['others_done'] / max(0.1, row['others_alone']):.1f}x their {row['others_alone']:.1f} s alone)"
           if "hot" in name else "")
    print(f"| {name} | {driver} | {row['stored']:,} | {row['seconds']:.1f} | {row['goodput']:.3f} | "
          f"{row['steady']:.3f} | "
          f"{row['throttled']:.3f}{hot} | {middle or '-'} | {once} | {kcl} |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma separated: " + ", ".join(SHORT))
    parser.add_argument("--scale", type=float, default=1.0, help="backlog size factor")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--fluent-bit", default=None, help="also run each scenario under this Fluent Bit")
    args = parser.parse_args()
    names = [SHORT[n] for n in args.only.split(",")] if args.only else list(SCENARIOS)
    drivers = ["host"] + ([args.fluent_bit] if args.fluent_bit else [])
    print(f"# at the stream's limit: front enforcing {LIMIT_RECORDS} records/s and 1 MiB/s per shard, "
          f"1 s burst; load average {os.getloadavg()[0]:.2f}")
    print("| scenario | producer | entries stored | seconds | goodput | steady | throttled/stored | middle (each) "
          "| exactly once | aggregates dropped by KCL |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|---|")
    for name in names:
        for driver in drivers:
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.monotonic()
                    row = run(name, args.scale, None if driver == "host" else driver, tmp)
                    label = "test host" if driver == "host" else "Fluent Bit " + Path(driver).name
                    report(name, row, label)
                    print(f"<!-- {name}: {time.monotonic() - started:.0f} s wall, load {os.getloadavg()[0]:.2f} -->",
                          flush=True)


if __name__ == "__main__":
    main()
