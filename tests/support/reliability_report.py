"""Reliability scenarios: each drives bin/kinesis.so through the test host
against moto behind the fault-injecting front, as Fluent Bit would (FLB_RETRY:
the same chunk is flushed again later), and counts what went in against what
came out (records in the stream + lines in the dead-letter file).

tests/delivery/test_reliability.py runs each scenario and asserts on its figures;
`.venv/bin/python -m tests.support.reliability_report` runs them all and prints the
table for RELIABILITY.md.
"""
import base64
import collections
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.harness import REGION, Host, Kinesis, make_chunk, numbered_records  # noqa: E402
from tests.support.kinesis_front import FrontServer  # noqa: E402
from tests.support.limited_kinesis import ShardLimits  # noqa: E402

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2


@dataclass
class Figures:
    name: str
    sent: int = 0
    delivered: int = 0       # distinct records found in the stream
    dead_lettered: int = 0   # distinct records found in the dead-letter file
    duplicated: int = 0      # extra copies (stream + dead letters)
    missing: int = 0
    unexpected: int = 0      # found but never sent
    flushes: int = 0
    retries: int = 0         # flushes answered FLB_RETRY
    stored_late: int = 0     # entries the front stored after a slow answer (duplicates possible)
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    def row(self):
        return (f"| {self.name} | {self.sent} | {self.delivered} | {self.dead_lettered} | {self.duplicated} "
                f"| {self.missing} | {self.flushes} / {self.retries} | {self.seconds:.1f} |")


def dead_letters(path):
    """Every dead letter of a file (its rotated .1 first), as its line's dict with
    "data" decoded (the parts of a split one joined); a part whose earlier parts
    were rotated away is left out."""
    items, partial = [], None
    for p in (Path(str(path) + ".1"), Path(path)):
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            item = json.loads(line)
            item["data"] = base64.b64decode(item["data"])
            part, parts = item.pop("part", 1), item.pop("parts", 1)
            if part == 1:
                partial = item
            elif partial is None or partial.get("_next") != part:
                partial = None
                continue
            else:
                partial["data"] += item["data"]
            partial["_next"] = part + 1
            if part == parts:
                del partial["_next"]
                items.append(partial)
                partial = None
    return items


def dead_letter_logs(path):
    """The `log` field of every record in a dead-letter file (and its rotated .1)."""
    found = []
    for item in dead_letters(path):
        raw = item["data"]
        record = None
        if item["format"] == "payload":
            try:
                record = json.loads(raw)
            except ValueError:
                pass
        elif item["format"] == "msgpack":
            record = msgpack.unpackb(raw, raw=False, strict_map_key=False, unicode_errors="replace")
        if isinstance(record, dict) and isinstance(record.get("log"), str):
            found.append(record["log"])
        else:
            found.append(f"<{item['reason']}>")
    return found


def count(figures, expected, kinesis, stream, dead_path=None):
    """Fills figures from the stream and dead-letter file against the expected `log` values."""
    in_stream = collections.Counter()
    for data in kinesis.read_all(stream).data:
        try:
            in_stream[json.loads(data).get("log")] += 1
        except ValueError:
            in_stream[data] += 1
    in_dead = collections.Counter(dead_letter_logs(dead_path) if dead_path else [])
    expected = collections.Counter(expected)
    both = in_stream + in_dead
    figures.sent = sum(expected.values())
    figures.delivered = sum(1 for k in in_stream if k in expected)
    figures.dead_lettered = sum(1 for k in in_dead if k in expected)
    figures.duplicated = sum(n - 1 for k, n in both.items() if n > 1)
    figures.missing = sum(1 for k in expected if both[k] == 0)
    figures.unexpected = sum(n for k, n in both.items() if k not in expected)
    figures.stored_late = kinesis.front.counters.entries_stored_late
    return figures


def options(kinesis, stream, **extra):
    base = {"region": REGION, "stream": stream, "endpoint": kinesis.url, "backoff_increment": "20ms"}
    base.update(extra)
    return base


def drive(h, chunks, figures, max_rounds=200, pause=0.2, between=None, instance=0, tag="app.log"):
    """Flushes every chunk; an FLB_RETRY chunk goes to the back of the queue and
    is flushed again later, as Fluent Bit's scheduler does."""
    queue = collections.deque(chunks)
    done = 0
    while queue:
        chunk = queue.popleft()
        rc = h.flush(chunk, instance=instance, tag=tag)
        figures.flushes += 1
        assert rc in (FLB_OK, FLB_RETRY), f"flush answered {rc}"
        if rc == FLB_RETRY:
            figures.retries += 1
            queue.append(chunk)
            assert figures.retries <= max_rounds, "too many FLB_RETRY"
            time.sleep(pause)
        else:
            done += 1
            if between:
                between(done)
    return figures


def still_serving(h, kinesis, stream, tag="after"):
    """After a fault: a fresh chunk still goes through, exactly once."""
    records = numbered_records(20, tag)
    assert h.flush(make_chunk(records)) == FLB_OK
    logs = collections.Counter(json.loads(d).get("log") for d in kinesis.read_all(stream).data)
    assert all(logs[r["log"]] == 1 for r in records)


# ---- scenarios: each returns Figures -----------------------------------------

FAULTS = {
    "per-entry throttling 30%": dict(entry_throttle_rate=0.3),
    "per-entry InternalFailure 20%": dict(entry_internal_rate=0.2),
    "whole-request throttling 30%": dict(request_throttle_rate=0.3),
    "HTTP 500/503 on 30% of requests": dict(request_5xx_rate=0.3),
    "connection resets on 30% of requests": dict(reset_rate=0.3),
    "scripted: reset, 503, throttle, ok, reset": dict(script=["reset", "5xx", "throttle", None, "reset"]),
}


def fault_scenario(kinesis, host, tmp, name, records=3000, **plugin_options):
    stream = kinesis.create_stream(shards=2)
    for key, value in FAULTS[name].items():
        setattr(kinesis.front.faults, key, value)
    h = host()
    assert h.init(**options(kinesis, stream, max_records_per_request=250, **plugin_options)) == FLB_OK
    recs = numbered_records(records, "f")
    chunks = [make_chunk(recs[i:i + 500]) for i in range(0, records, 500)]
    figures = Figures(name)
    start = time.monotonic()
    drive(h, chunks, figures)
    figures.seconds = time.monotonic() - start
    figures.notes = dict(vars(kinesis.front.counters))
    kinesis.front.reset()
    still_serving(h, kinesis, stream)
    return count(figures, [r["log"] for r in recs] + [f"after-{i:07d}" for i in range(20)], kinesis, stream)


def slow_scenario(kinesis, host, tmp, lost):
    """Answers slower than http_request_timeout (1 s). "slow-lost": nothing stored;
    "slow": stored after the client gave up: the one at-least-once edge."""
    stream = kinesis.create_stream()
    kinesis.front.faults.slow_delay = 2.0
    kinesis.front.faults.script = [None, "slow-lost" if lost else "slow", None]
    h = host()
    assert h.init(**options(kinesis, stream, http_request_timeout=1, max_records_per_request=100)) == FLB_OK
    recs = numbered_records(300, "slow")
    figures = Figures("answer slower than http_request_timeout, " +
                      ("nothing stored" if lost else "stored anyway (duplicate expected)"))
    start = time.monotonic()
    drive(h, [make_chunk(recs)], figures)
    figures.seconds = time.monotonic() - start
    time.sleep(1.5)  # the slow request finishes on the server
    return count(figures, [r["log"] for r in recs], kinesis, stream)


def down_scenario(kinesis, host, tmp, seconds=3.0, max_retries=2):
    """The endpoint resets every PutRecords for `seconds`."""
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**options(kinesis, stream, max_retries=max_retries)) == FLB_OK
    recs = numbered_records(1000, "down")
    kinesis.front.faults.down_until = time.monotonic() + seconds
    figures = Figures(f"endpoint down {seconds:g} s (max_retries {max_retries})")
    start = time.monotonic()
    drive(h, [make_chunk(recs[i:i + 250]) for i in range(0, 1000, 250)], figures)
    figures.seconds = time.monotonic() - start
    still_serving(h, kinesis, stream)
    return count(figures, [r["log"] for r in recs] + [f"after-{i:07d}" for i in range(20)], kinesis, stream)


def bad_input_chunk():
    """Good records mixed with every kind of bad input; returns (chunk, good logs, bad logs)."""
    from tests.support.harness import event_time
    deep = {"log": "deep"}
    cursor = deep
    for _ in range(1000):
        cursor["k"] = {}
        cursor = cursor["k"]
    invalid_utf8 = msgpack.packb([[event_time(1.0), {}], {"log": "bad-utf8", "text": b"\xff\xfeok\xc3"}],
                                 use_bin_type=False)  # bytes packed as str: invalid UTF-8 text
    parts, good, bad = [], [], []

    def add(record, ok=True, packed=None):
        parts.append(packed or msgpack.packb([[event_time(1.0), {}], record], use_bin_type=True))
        (good if ok else bad).append(record["log"])

    for i in range(10):
        add({"log": f"good-{i}", "n": i})
    add({"log": "bad-utf8"}, packed=invalid_utf8)
    add({"log": "binary", "blob": bytes(range(256))})
    add({"log": "dotted", "a.b": {"c.d": 1}})
    add({"log": "int-key", "pk": 12345})
    add({"log": "map-key", "pk": {"x": 1}})
    add({"log": "float", "x": 1.5e308, "neg": -(2 ** 63)})
    add({"log": "nonstr-keys", 1: "one", 2.5: "two"})
    add(deep, ok=False)  # deeper than any JSON encoder allows: dead letter
    add({"log": "huge-10MiB", "pad": "z" * (10 * 1024 * 1024)}, ok=False)  # over 1 MiB: dead letter
    parts.append(msgpack.packb([[event_time(1.0), {}], {}], use_bin_type=True))  # empty map: sent as {}
    good.append(None)  # counted under "no log key"
    for i in range(10, 20):
        add({"log": f"good-{i}", "n": i})
    return b"".join(parts), good, bad


def bad_input_scenario(kinesis, host, tmp, dead=True):
    stream = kinesis.create_stream(shards=2)
    dead_path = Path(tmp) / "dead.jsonl"
    h = host()
    extra = {"dead_letter_file": dead_path} if dead else {}
    assert h.init(**options(kinesis, stream, partition_key="pk", **extra)) == FLB_OK
    chunk, good, bad = bad_input_chunk()
    figures = Figures("bad input mix" + ("" if dead else " (no dead_letter_file)"))
    start = time.monotonic()
    drive(h, [chunk], figures)
    figures.seconds = time.monotonic() - start
    still_serving(h, kinesis, stream)
    count(figures, good + bad + [f"after-{i:07d}" for i in range(20)], kinesis, stream,
          dead_path if dead else None)
    figures.notes["log"] = h.log()
    figures.notes["good"], figures.notes["bad"] = good, bad
    return figures


def corrupt_scenario(kinesis, host, tmp, truncated):
    stream = kinesis.create_stream()
    dead_path = Path(tmp) / "dead.jsonl"
    h = host()
    assert h.init(**options(kinesis, stream, dead_letter_file=dead_path)) == FLB_OK
    recs = numbered_records(50, "c")
    chunk = make_chunk(recs)
    if truncated:
        chunk = chunk[:-7]  # ends inside the last event
        expected = [r["log"] for r in recs[:-1]]
    else:
        chunk = chunk + b"\xc1\xc1garbage" + make_chunk(numbered_records(3, "lost"))
        expected = [r["log"] for r in recs]
    figures = Figures("truncated chunk" if truncated else "corrupt bytes inside a chunk")
    drive(h, [chunk], figures)
    count(figures, expected, kinesis, stream, dead_path)
    figures.notes["dead_lines"] = dead_path.read_text().splitlines()
    still_serving(h, kinesis, stream)
    return figures


def headline_scenario(kinesis, host, tmp, records=100_000, down_seconds=30.0, chunk_size=2000):
    """100,000 records; every shard limited to 500 records/s (throttled entries
    are paced, so the limit is learned); 20% of entries failing (InternalFailure);
    5% of requests 5xx or reset; the endpoint down for 30 s in the middle."""
    stream = kinesis.create_stream(shards=4)
    faults = kinesis.front.faults
    faults.shard_ranges = [(s["ShardId"], int(s["HashKeyRange"]["StartingHashKey"]),
                            int(s["HashKeyRange"]["EndingHashKey"]))
                           for s in kinesis.client.list_shards(StreamName=stream)["Shards"]]
    faults.shard_limits = ShardLimits(records=500)
    faults.entry_internal_rate = 0.2
    faults.request_5xx_rate = 0.025
    faults.reset_rate = 0.025
    h = host()
    assert h.init(**options(kinesis, stream, partition_key="log", backoff_increment="50ms")) == FLB_OK
    recs = numbered_records(records, "h")
    chunks = [make_chunk(recs[i:i + chunk_size]) for i in range(0, records, chunk_size)]

    def between(done):
        if done == len(chunks) // 2:
            faults.down_until = time.monotonic() + down_seconds

    figures = Figures(f"headline: {records} records, shards limited to 500 records/s, 20% entries failing, "
                      f"5% requests 5xx/reset, down {down_seconds:g} s")
    start = time.monotonic()
    drive(h, chunks, figures, max_rounds=1000, pause=0.5, between=between)
    figures.seconds = time.monotonic() - start
    figures.notes = dict(vars(kinesis.front.counters))
    kinesis.front.reset()
    still_serving(h, kinesis, stream)
    return count(figures, [r["log"] for r in recs] + [f"after-{i:07d}" for i in range(20)], kinesis, stream)


# ---- the report ---------------------------------------------------------------

def main():
    import logging
    import os
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    import urllib.request
    from tests.support.harness import FAKE_CREDENTIALS
    os.environ.update(FAKE_CREDENTIALS)
    server = FrontServer().start()
    kinesis = Kinesis(server)
    rows = []
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        hosts = []

        def host(**kwargs):
            h = Host(tmp, **kwargs)
            hosts.append(h)
            return h

        def run(fn, *args, **kwargs):
            urllib.request.urlopen(urllib.request.Request(server.url + "/moto-api/reset", method="POST")).read()
            server.front.reset()
            sub = tempfile.mkdtemp(dir=tmp)
            figures = fn(kinesis, host, sub, *args, **kwargs)
            rows.append(figures)
            print(figures.row(), file=sys.stderr)
            while hosts:
                hosts.pop().close()

        for name in FAULTS:
            run(fault_scenario, name)
        run(slow_scenario, True)
        run(slow_scenario, False)
        run(down_scenario, 3.0, 2)
        run(down_scenario, 3.0, -1)
        run(bad_input_scenario, True)
        run(bad_input_scenario, False)
        run(corrupt_scenario, False)
        run(corrupt_scenario, True)
        if not quick:
            run(headline_scenario)
    server.stop()
    print("| scenario | sent | delivered | dead-lettered | duplicated | missing | flushes / FLB_RETRY | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for figures in rows:
        print(figures.row())
    print("\nCommand: `.venv/bin/python -m tests.support.reliability_report`")


if __name__ == "__main__":
    main()
