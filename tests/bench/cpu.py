"""`make bench`: CPU per record spent in the plugin, records/s and peak memory.

Drives bin/kinesis.so through the test host (the same ABI path as Fluent
Bit) with ~2 MB chunks of seeded Kubernetes-style container logs into a
local sink on 127.0.0.1 that answers PutRecords (and ListShards) at once.
The plugin's CPU is the host process's user+system time during the flushes
(Init excluded), read from /proc; the sink runs in this process and is not
counted. Each scenario runs several times; the median is reported.

    .venv/bin/python -m tests.bench [--runs 5] [--records 200000] [--only plain,zlib,field_format_ecs]
                                    [--fluent-bit PATH]   (or FLUENT_BIT=PATH)

With a real Fluent Bit, it also reports the whole-process figure: Fluent Bit's
CPU per record tailing JSON container logs into our output, minus the same run
with the `null` output.
"""
import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.harness import HOST, PLUGIN, make_chunk  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SHARDS = 256
MAX_HASH = 2 ** 128 - 1

SCENARIOS = {
    "plain": {},
    "partition_key": {"partition_key": "kubernetes->pod_name"},
    "log_key": {"log_key": "log"},
    "aggregation": {"aggregation": "true"},
    "aggregation+zlib": {"aggregation": "true", "compression": "zlib"},
    "zlib": {"compression": "zlib"},
    "gzip": {"compression": "gzip"},
    "zstd": {"compression": "zstd"},
    # every run has the default durable ledger (a fresh state directory); this is without it
    "plain+ledger_off": {"ledger_path": "off"},
    "aggregation+ledger_off": {"aggregation": "true", "ledger_path": "off"},
    # field_format: the records read as Fluent Bit's (log, stream, kubernetes) and written in a
    # schema, natively by each shape's plan (`make bench` runs them; BENCHMARKS.md has the figures)
    "field_format_ecs": {"field_format": "ecs"},
    # the Python path doing no more than plain (data_keys keeps every key): what field_format starts from
    "python_path": {"data_keys": "log,stream,time,kubernetes"},
    "field_format_otel": {"field_format": "otel"},
    "field_format_ocsf": {"field_format": "ocsf"},
    **{f"field_format_{name}": {"field_format": name} for name in ("cim", "asim", "udm", "cef", "leef", "csl")},
}


# ---- input -------------------------------------------------------------------

def container_logs(count, size, seed=42):
    """Records shaped like Fluent Bit's tail + kubernetes filter output."""
    rng = random.Random(seed)
    pods = [(f"web-{rng.randrange(16**8):08x}-{i:02d}", f"ns-{i % 7}", f"app-{i % 11}") for i in range(50)]
    words = ["GET", "POST", "/api/v1/orders", "/healthz", "200", "404", "user", "latency", "ms",
             "request", "completed", "upstream", "cache", "hit", "miss", "id"]
    records = []
    for i in range(count):
        pod, namespace, app = pods[rng.randrange(50)]
        line = []
        while sum(len(w) + 1 for w in line) < size - 190:
            line.append(rng.choice(words) if rng.random() < 0.8 else str(rng.randrange(100000)))
        records.append({
            "log": " ".join(line),
            "stream": "stdout",
            "time": "2026-11-22T10:00:00.%06dZ" % (i % 1000000),
            "kubernetes": {"pod_name": pod, "namespace_name": namespace,
                           "labels": {"app": app}, "container_name": app},
        })
    return records


def chunks_of(records, target=2 * 1024 * 1024):
    out, start = [], 0
    per_record = max(1, len(make_chunk(records[:100])) // 100)
    step = max(1, target // per_record)
    while start < len(records):
        out.append(make_chunk(records[start:start + step]))
        start += step
    return out


# ---- the sink ------------------------------------------------------------------

def shard_list():
    width = (MAX_HASH + 1) // SHARDS
    return [{"ShardId": f"shardId-{i:012d}",
             "HashKeyRange": {"StartingHashKey": str(i * width),
                              "EndingHashKey": str(MAX_HASH if i == SHARDS - 1 else (i + 1) * width - 1)},
             "SequenceNumberRange": {"StartingSequenceNumber": "1"}} for i in range(SHARDS)]


SHARD_WIDTH = (MAX_HASH + 1) // SHARDS


def shard_of(entry):
    explicit = entry.get("ExplicitHashKey")
    hash_key = int(explicit) if explicit else int.from_bytes(
        hashlib.md5(entry["PartitionKey"].encode()).digest(), "big")
    return f"shardId-{min(hash_key // SHARD_WIDTH, SHARDS - 1):012d}"


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle plus the
    # client's delayed ACK would hold every answer ~40 ms
    disable_nagle_algorithm = True
    counts = {"calls": 0, "entries": 0, "bytes": 0}
    latency = 0.0  # seconds before each PutRecords answer: a network round trip
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        if target.endswith("PutRecords"):
            time.sleep(self.latency)
            # answer with the shard each entry hashes to, as Kinesis does: the
            # aggregator checks it (the sink's CPU is not counted)
            entries = orjson.loads(body)["Records"]
            with self.lock:
                self.counts["calls"] += 1
                self.counts["entries"] += len(entries)
                self.counts["bytes"] += len(body)
            answer = b'{"FailedRecordCount":0,"Records":[' + b",".join(
                b'{"SequenceNumber":"1","ShardId":"%s"}' % shard_of(e).encode() for e in entries) + b"]}"
        elif target.endswith("ListShards"):
            answer = json.dumps({"Shards": shard_list()}).encode()
        else:
            answer = json.dumps({"StreamDescriptionSummary": {
                "StreamName": "bench", "StreamStatus": "ACTIVE", "OpenShardCount": SHARDS}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


# ---- one run -------------------------------------------------------------------

def proc_cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_once(url, options, chunk_paths, records, workers=1):
    state = tempfile.TemporaryDirectory()  # the default durable state, new for each run
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", STATE_DIRECTORY=state.name)
    proc = subprocess.Popen([str(HOST), str(PLUGIN)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env)

    def command(line):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    assert proc.stdout.readline().startswith("registered")
    settings = {"region": "us-east-1", "stream": "bench", "endpoint": url, **options}
    for key, value in settings.items():
        command(f"set 0 {key} {value}")
    assert command("init 0").endswith(" 1"), "init failed"
    command("flush 0 warmup " + str(chunk_paths[0]))  # first flush imports lazily used code
    cpu_before, wall_before = proc_cpu_seconds(proc.pid), time.perf_counter()
    for start in range(0, len(chunk_paths), workers):  # `workers` flushes at once, as Fluent Bit's
        batch = chunk_paths[start:start + workers]
        answer = command("pflush " + " ".join(f"0 kube.var.log {path}" for path in batch))
        assert answer == "pflush" + " 1" * len(batch), answer
    cpu = proc_cpu_seconds(proc.pid) - cpu_before
    wall = time.perf_counter() - wall_before
    peak = proc_peak_rss_mb(proc.pid)
    command("exit 0")
    proc.stdin.write("quit\n")
    proc.stdin.close()
    proc.wait(30)
    state.cleanup()
    return cpu * 1e6 / records, records / wall, peak


def workers_scaling(url, names, paths, count):
    """records/s with 1 and 2 concurrent flushes (Fluent Bit's `workers`) when
    each PutRecords answer takes 20 ms, as a round trip to Kinesis does."""
    if "plain" not in names:
        return ""
    Sink.latency = 0.020
    one = run_once(url, SCENARIOS["plain"], paths, count, workers=1)[1]
    two = run_once(url, SCENARIOS["plain"], paths, count, workers=2)[1]
    Sink.latency = 0.0
    return (f"\n# workers, plain 250 B, 20 ms per PutRecords answer: 1 worker {one:,.0f} records/s, "
            f"2 workers {two:,.0f} records/s ({two / one:.2f}x)")


# ---- whole process under a real Fluent Bit ---------------------------------------

def fluent_bit_run(binary, log_file, output_args, tmp):
    """(CPU seconds, peak RSS MB) of a Fluent Bit that tails `log_file` (JSON
    lines) to the end and exits."""
    parsers = Path(tmp) / "parsers.conf"
    parsers.write_text("[PARSER]\n    Name json\n    Format json\n")
    proc = subprocess.Popen([binary, "-q", "-R", str(parsers), "-f", "1", "-e", str(PLUGIN),
                             "-i", "tail", "-p", f"path={log_file}", "-p", "read_from_head=true",
                             "-p", "exit_on_eof=true", "-p", "parser=json", "-p", "buffer_max_size=1M",
                             "-p", "mem_buf_limit=8M",  # bounded input: the RSS difference is the output
                             *output_args],
                            env=dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                                     STATE_DIRECTORY=str(Path(tmp) / "state")))
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"fluent-bit exited with {proc.returncode}"
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def whole_process(binary, url, records, runs, names, tmp):
    """Fluent Bit CPU per record with our output minus the same run with `null`."""
    log_file = Path(tmp) / "container.log"
    with open(log_file, "wb") as out:
        for record in container_logs(records, 250):
            out.write(orjson.dumps(record) + b"\n")
    null_runs = [fluent_bit_run(binary, log_file, ["-o", "null", "-m", "*"], tmp) for _ in range(runs)]
    null_cpu = statistics.median(r[0] for r in null_runs)
    null_rss = max(r[1] for r in null_runs)
    print(f"\n# whole process: {binary}, {records} lines tailed (JSON parsed); `null` output: "
          f"{null_cpu * 1e6 / records:.2f} µs/record, peak RSS {null_rss:.0f} MB")
    print("| scenario | Fluent Bit CPU µs/record over `null` | peak RSS MB over `null` |")
    print("|---|---|---|")
    for name in names:
        options = {"region": "us-east-1", "stream": "bench", "endpoint": url, "log_level": "warn",
                   **SCENARIOS[name]}
        output = ["-o", "kinesis", "-m", "*"] + [x for k, v in options.items() for x in ("-p", f"{k}={v}")]
        results = [fluent_bit_run(binary, log_file, output, tmp) for _ in range(runs)]
        cpu = statistics.median(r[0] for r in results)
        rss = max(r[1] for r in results)
        print(f"| {name} | {(cpu - null_cpu) * 1e6 / records:.2f} | {rss - null_rss:.0f} |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--sizes", default="250,2000")
    parser.add_argument("--only", default="")
    parser.add_argument("--fluent-bit", default=os.environ.get("FLUENT_BIT"),
                        help="also measure the whole process under this Fluent Bit")
    parser.add_argument("--fluent-bit-records", type=int, default=500_000)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    names = [n for n in SCENARIOS if not args.only or n in args.only.split(",")]
    print(f"# {args.records} records per run, median of {args.runs} runs, 4-shard sink on 127.0.0.1")
    print("| scenario | record size | CPU µs/record | records/s | peak RSS MB |")
    print("|---|---|---|---|---|")
    scaling = ""
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            count = args.records if size < 1000 else args.records // 4
            paths = []
            for i, chunk in enumerate(chunks_of(container_logs(count, size))):
                path = Path(tmp) / f"chunk-{size}-{i}.mp"
                path.write_bytes(chunk)
                paths.append(path)
            for name in names:
                runs = [run_once(url, SCENARIOS[name], paths, count) for _ in range(args.runs)]
                cpu = statistics.median(r[0] for r in runs)
                rate = statistics.median(r[1] for r in runs)
                peak = max(r[2] for r in runs)
                print(f"| {name} | {size} B | {cpu:.2f} | {rate:,.0f} | {peak:.0f} |", flush=True)
            if size < 1000:
                scaling = workers_scaling(url, names, paths, count)
        if scaling:
            print(scaling)
        if args.fluent_bit:
            whole_process(args.fluent_bit, url, args.fluent_bit_records, args.runs, names, tmp)
    server.shutdown()


if __name__ == "__main__":
    main()
