"""Fluent Bit's memory through a long outage, with our output and with one of
Fluent Bit's own (measured, not asserted).

A writer appends container-log lines (~250 B) to a file at --rate lines/s;
Fluent Bit tails it (memory buffering, retry_limit no_limits) into an output
whose endpoint refuses every connection (a closed port on 127.0.0.1) for
--seconds. The fluent-bit process's VmRSS is sampled every 5 s. Outputs:
  kinesis              this plugin, one record per line
  kinesis+aggregation  this plugin, aggregation true (no shard map: the
                       endpoint is down from the start, so it sends plain)
  http                 Fluent Bit's own http output: its buffering alone
The difference between ours and `http` is what the plugin adds (the embedded
Python included).

    .venv/bin/python -m tests.bench.outage_fluent_bit --fluent-bit PATH [--seconds 180] [--rate 1000]
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.cpu import container_logs  # noqa: E402
from tests.support.harness import FAKE_CREDENTIALS, PLUGIN, REGION  # noqa: E402
from tests.bench.outage_memory import rss_mb  # noqa: E402


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def output(kind, port):
    if kind == "http":
        return f"[OUTPUT]\n    name http\n    match *\n    host 127.0.0.1\n    port {port}\n" \
               "    format json_lines\n    retry_limit no_limits\n"
    extra = "    aggregation true\n" if kind == "kinesis+aggregation" else ""
    return (f"[OUTPUT]\n    name kinesis\n    match *\n    region {REGION}\n    stream outage\n"
            f"    endpoint http://127.0.0.1:{port}\n    retry_limit no_limits\n" + extra)


def run(binary, kind, seconds, rate, tmp):
    tmp = Path(tmp)
    log_file = tmp / "app.log"
    log_file.write_text("")
    (tmp / "plugins.conf").write_text(f"[PLUGINS]\n    Path {PLUGIN}\n")
    (tmp / "fluent-bit.conf").write_text(
        "[SERVICE]\n    flush 1\n    grace 2\n    log_level error\n    plugins_file plugins.conf\n"
        f"[INPUT]\n    name tail\n    path {log_file}\n    read_from_head true\n    refresh_interval 1\n"
        + output(kind, closed_port()))
    lines = [l.decode() for l in _lines(rate)]
    stop = threading.Event()

    def write():
        step, i = max(1, rate // 10), 0
        with open(log_file, "a") as out:
            while not stop.wait(0.1):  # a tenth of a second's lines, ten times a second
                out.write("".join(lines[i:i + step]))
                out.flush()
                i = (i + step) % len(lines)

    env = dict(os.environ, **FAKE_CREDENTIALS)
    proc = subprocess.Popen([binary, "-c", "fluent-bit.conf"], cwd=tmp, env=env,
                            stdout=open(tmp / "fluent-bit.log", "wb"), stderr=subprocess.STDOUT)
    writer = threading.Thread(target=write)
    writer.start()
    samples = []
    start = time.monotonic()
    try:
        while time.monotonic() < start + seconds:
            time.sleep(5)
            assert proc.poll() is None, (tmp / "fluent-bit.log").read_text()[-2000:]
            samples.append((time.monotonic() - start, rss_mb(proc.pid)))
        peak = rss_mb(proc.pid, "VmHWM")
    finally:
        stop.set()
        writer.join()
        proc.kill()
        proc.wait()
    return samples, peak


def _lines(rate):
    import orjson
    return [orjson.dumps(r) + b"\n" for r in container_logs(rate, 250)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fluent-bit", default=os.environ.get("FLUENT_BIT"), required=False)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--outputs", default="http,kinesis,kinesis+aggregation")
    args = parser.parse_args()
    if not args.fluent_bit:
        sys.exit("--fluent-bit PATH (or FLUENT_BIT) is required")
    results = {}

    def one(kind):
        with tempfile.TemporaryDirectory() as tmp:
            results[kind] = run(args.fluent_bit, kind, args.seconds, args.rate, tmp)

    threads = [threading.Thread(target=one, args=(k,)) for k in args.outputs.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"# {args.seconds:.0f} s outage at {args.rate} lines/s, {Path(args.fluent_bit).name}; "
          "VmRSS MB every 30 s, then the peak (VmHWM)")
    for kind, (samples, peak) in results.items():
        every = max(1, len(samples) // 6)
        series = ", ".join(f"{t:.0f}:{m:.0f}" for t, m in samples[every - 1::every])
        print(f"| {kind} | {series} | {peak:.1f} |")


if __name__ == "__main__":
    main()
