"""Peak memory of one flush of a hostile 2 MiB chunk (issue 9: within 64 MB of
the baseline, whatever the chunk holds).

    .venv/bin/python -m tests.bench.hostile_memory

For each chunk: a fresh test host (bin/flb-test-host dlopening bin/kinesis.so)
against moto, dead_letter_file set; a small good chunk is flushed first (all
imports done, the baseline), then the hostile one. Peak RSS is the host
process's VmHWM from /proc/PID/status, before and after the hostile flush.
"""
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import msgpack

from tests.support import reliability_report as rr
from tests.support.harness import FAKE_CREDENTIALS, Host, Kinesis, make_chunk, numbered_records
from tests.support.kinesis_front import FrontServer

SIZE = 2 * 1024 * 1024
EVENT_TIME = msgpack.ExtType(0, struct.pack(">II", 1_700_000_000, 0))


def _fill(event):
    return event * (SIZE // len(event))


def _deep_record(levels):
    value = "x"
    for _ in range(levels):
        value = {"k": value}
    return {"log": value}


CHUNKS = {
    # name: (chunk, extra plugin options)
    "good records (reference)": (make_chunk(numbered_records(SIZE // 40)), {}),
    "all c0 (nil items)": (b"\xc0" * SIZE, {}),
    "all 0x90 (empty arrays)": (b"\x90" * SIZE, {}),
    "arrays nested 2 M deep": (b"\x91" * SIZE, {}),
    "records nested 300 deep (past orjson's limit)": (_fill(msgpack.packb([[EVENT_TIME, {}], _deep_record(300)])), {}),
    "many tiny events without log_key": (_fill(msgpack.packb([[EVENT_TIME, {}], {}])), {"log_key": "log"}),
    "many tiny events, body not a map": (_fill(msgpack.packb([[EVENT_TIME, {}], 1])), {}),
    "one giant string, not an event": (msgpack.packb("y" * (SIZE - 8)), {}),
    "one giant record over max_record_bytes": (msgpack.packb([[EVENT_TIME, {}], {"log": "\x01" * (SIZE - 40)}]), {}),
}


def peak_rss(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def measure(kinesis, name, chunk, options, tmp):
    stream = kinesis.create_stream()
    dead = Path(tmp) / f"dead-{len(os.listdir(tmp))}.jsonl"
    h = Host(tmp)
    try:
        assert h.init(**rr.options(kinesis, stream, dead_letter_file=dead, **options)) == 1, h.log()
        assert h.flush(make_chunk(numbered_records(200, "warm"))) == 1
        before = peak_rss(h.proc.pid)
        start = time.monotonic()
        answer = h.flush(chunk)
        seconds = time.monotonic() - start
        after = peak_rss(h.proc.pid)
    finally:
        h.close()
    files = [p for p in (dead, Path(str(dead) + ".1")) if p.exists()]
    lines = sum(len(p.read_bytes().splitlines()) for p in files)
    written = sum(p.stat().st_size for p in files)
    return (f"| {name} | {len(chunk) / 2**20:.1f} | {answer} | {before / 2**20:.0f} | {after / 2**20:.0f} "
            f"| {(after - before) / 2**20:.1f} | {lines} | {written / 2**20:.1f} | {seconds:.1f} |")


def main():
    os.environ.update(FAKE_CREDENTIALS)
    server = FrontServer().start()
    kinesis = Kinesis(server)
    print("| chunk | MiB | answer | peak RSS before (MB) | after (MB) | growth (MB) | dead-letter lines "
          "| dead-letter MiB | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (chunk, options) in CHUNKS.items():
            print(measure(kinesis, name, chunk, options, tmp), flush=True)
    server.stop()


if __name__ == "__main__":
    sys.exit(main())
