"""The plugin's memory through a long outage, measured (not asserted).

A chunk of 1,000 records (~250 B container logs) arrives every second, as a
tail input at 1,000 lines/s makes them; PutRecords is down (every request
reset) for --seconds. Each chunk is flushed through the test host as Fluent
Bit would: two at a time (`workers 2`), retried on its scheduler's backoff
(5 s base, doubling, random within it). The host process's VmRSS is sampled
throughout; then the endpoint comes back, every chunk is flushed until
delivered, and the stream is read back and counted (exactly once expected).

The host holds only the chunk being flushed: what Fluent Bit buffers meanwhile
(the chunks waiting for a retry) is reported but not in the figure.

    .venv/bin/python -m tests.bench.outage_memory [--seconds 180] [--rate 1000] [--aggregation]
"""
import argparse
import collections
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from tests.bench.cpu import container_logs  # noqa: E402
from tests.support.harness import FAKE_CREDENTIALS, REGION, Host, make_chunk  # noqa: E402
from tests.support.kinesis_front import FrontServer  # noqa: E402
from tests.support import streams  # noqa: E402

WORKERS = 2


def rss_mb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--aggregation", action="store_true")
    parser.add_argument("--max-retries", default="2")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.update(FAKE_CREDENTIALS)
    server = FrontServer().start()
    client = boto3.client("kinesis", region_name=REGION, endpoint_url=server.url,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_stream(StreamName="outage", ShardCount=4)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        host = Host(tmp)
        options = {"region": REGION, "stream": "outage", "endpoint": server.url,
                   "partition_key": "kubernetes->pod_name", "max_retries": args.max_retries,
                   "aggregation": "true" if args.aggregation else "false"}
        assert host.init(**options) == 1
        pid = host.proc.pid
        warmup = container_logs(args.rate, 250)
        assert host.flush(make_chunk(warmup)) == 1  # code loaded, shard map read
        baseline = rss_mb(pid)

        sent = list(warmup)
        pending = {}  # chunk path -> (next try at, tries)
        start = time.monotonic()
        server.front.faults.down_until = start + args.seconds
        samples, flushes, made, outage_peak = [], 0, 0, 0.0
        while time.monotonic() < start + args.seconds or pending:
            now = time.monotonic()
            while made < min(args.seconds, now - start):  # a chunk per second of outage
                records = container_logs(args.rate, 250, seed=made)
                for r in records:
                    r["log"] = f"c{made:04d}-" + r["log"]
                sent.extend(records)
                pending[host.write_chunk(make_chunk(records))] = (now, 0)
                made += 1
            due = sorted((at, path) for path, (at, _tries) in pending.items() if at <= now)[:WORKERS]
            if not due:
                time.sleep(0.05)
                continue
            paths = [path for _at, path in due]
            answers = host.command("pflush " + " ".join(f"0 app.log {p}" for p in paths)).split()[1:]
            flushes += len(paths)
            for path, answer in zip(paths, answers):
                tries = pending[path][1] + 1
                if answer == "1":
                    del pending[path]
                    path.unlink()
                else:  # Fluent Bit's scheduler: random wait up to base * 2^tries
                    pending[path] = (time.monotonic() + rng.uniform(5, min(120, 5 * 2 ** tries)), tries)
            if time.monotonic() < start + args.seconds:
                samples.append((time.monotonic() - start, rss_mb(pid), len(pending)))
                outage_peak = rss_mb(pid, "VmHWM")  # the true peak, between samples too
            else:  # recovered: retry the rest now
                pending = {p: (0, t) for p, (_at, t) in pending.items()}
        peak = max(max(s[1] for s in samples), outage_peak)
        waiting = max(s[2] for s in samples)
        host.exit()
        host.close()
    found = collections.Counter(json.loads(r.data)["log"]
                                for r in streams.read_all(client, "outage").everything)
    missing = sum(1 for r in sent if r["log"] not in found)
    duplicated = sum(found.values()) - len(found)
    server.stop()
    kind = "aggregation" if args.aggregation else "plain"
    every = max(1, len(samples) // 12)
    print(f"# {kind}: RSS MB over the outage (s, MB): "
          + ", ".join(f"{t:.0f}:{m:.1f}" for t, m, _n in samples[::every]))
    print(f"| {kind} | {args.seconds:.0f} s at {args.rate} lines/s | {baseline:.1f} | {peak:.1f} | "
          f"{peak - baseline:+.1f} | {waiting} | {flushes} | {len(sent)} | {missing} | {duplicated} |")


if __name__ == "__main__":
    main()
