"""Ours against Fluent Bit's own C output (issue 18), whole process, with TLS.

A real Fluent Bit tails Kubernetes-shaped JSON lines (tail + JSON parser)
into one output and exits at the end of the file. The outputs: `null` (what
the pipeline costs without an output), ours (plain, partition_key,
aggregation, aggregation+partition_key, zstd) and Fluent Bit's C
`kinesis_streams` (plain, simple_aggregation), both over HTTPS to a sink on
127.0.0.1 with a self-signed certificate (ours trusts it through AWS_CA_BUNDLE,
the C output through tls.ca_file: it always verifies) that answers PutRecords at once (its
CPU is this process's, not counted). Figures: Fluent Bit's CPU (user+system,
from wait4) per line minus `null`'s, and peak RSS (VmHWM, polled), median of `--runs` rounds;
each round runs every output once, in turn, so that load on the machine
falls on all of them alike. Each round also runs every output over the
file's first 1,000 lines: "once started" subtracts that run, so start-up
(paid once per Fluent Bit process: for ours, the embedded Python and
botocore) is shown apart from the cost per line. The load average is
printed with the table.

    FLUENT_BIT=/path/to/fluent-bit .venv/bin/python -m tests.bench.versus_c
        [--runs 3] [--sizes 250,2000] [--records 300000] [--only null,plain,c_plain]
        [--baseline /path/to/main/bin/kinesis.so]   (each of ours again with that build: before/after)
        [--wrap "perf record -e cpu-clock -g -o /tmp/{output}-{size}.data --"]   (a profile of each but null)
        [--latency 0.05]   (seconds the sink waits before each PutRecords answer, as a network would)
"""
import argparse
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.cpu import Sink, container_logs  # noqa: E402
from tests.support.harness import PLUGIN  # noqa: E402

OURS = {
    "plain": {},
    "partition_key": {"partition_key": "kubernetes->pod_name"},
    "aggregation": {"aggregation": "true"},
    "aggregation+partition_key": {"aggregation": "true", "partition_key": "kubernetes->pod_name"},
    "zstd": {"compression": "zstd"},
    # beside the C output's simple_aggregation, and the cheap way to compress small records
    "simple_aggregation": {"simple_aggregation": "true"},
    "simple_aggregation+zstd": {"simple_aggregation": "true", "compression": "zstd"},
}
BASELINE = []  # --baseline: another build's kinesis.so
C_CORE = {
    "c_plain": {},
    "c_simple_aggregation": {"simple_aggregation": "true"},
}


class TlsServer(ThreadingHTTPServer):
    """The bench sink over TLS; the handshake happens on the handler's
    thread, not in accept()."""

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self.context = context

    def get_request(self):
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


def self_signed(tmp):
    cert, key = Path(tmp) / "sink.crt", Path(tmp) / "sink.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def start_sink(tmp):
    cert, key = self_signed(tmp)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = TlsServer(("127.0.0.1", 0), Sink, context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, cert


def output_section(name, port, cert):
    """The [OUTPUT] section's properties for output `name`."""
    if name == "null":
        return {"Name": "null"}
    if name in C_CORE:
        return {"Name": "kinesis_streams", "region": "us-east-1", "stream": "bench", "endpoint": "127.0.0.1",
                "port": port, "tls.ca_file": str(cert), **C_CORE[name]}  # it always verifies
    return {"Name": "kinesis", "region": "us-east-1", "stream": "bench",
            "endpoint": f"https://127.0.0.1:{port}", "log_level": "warn", **OURS[name.split(":")[-1]]}


def config_file(tmp, log_file, output):
    """Flush every second as by default; a long grace, so that every output ends its work."""
    parsers = Path(tmp) / "parsers.conf"
    parsers.write_text("[PARSER]\n    Name json\n    Format json\n")
    sections = {
        "SERVICE": {"Flush": 1, "Grace": 120, "Parsers_File": parsers},
        "INPUT": {"Name": "tail", "Path": log_file, "Read_From_Head": "true", "Exit_On_Eof": "true",
                  "Parser": "json", "Buffer_Max_Size": "1M", "Mem_Buf_Limit": "8M"},  # bounded input
        "OUTPUT": {"Match": "*", **output},
    }
    config = Path(tmp) / "fluent-bit.conf"
    config.write_text("".join(f"[{name}]\n" + "".join(f"    {k} {v}\n" for k, v in props.items())
                              for name, props in sections.items()))
    return config


class PeakRss:
    """The child's VmHWM, read every 50 ms: wait4's ru_maxrss would carry this
    process's own size, recorded when the child exec'd from a copy of it."""

    def __init__(self, pid):
        self.path, self.mb, self.done = f"/proc/{pid}/status", 0.0, threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def poll(self):
        while not self.done.wait(0.05):
            try:
                text = Path(self.path).read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.mb = max(self.mb, int(line.split()[1]) / 1024)

    def stop(self):
        self.done.set()
        self.thread.join()


def fluent_bit_run(binary, log_file, output, tmp, cert, wrap=()):
    """(CPU seconds, peak RSS MB) of a Fluent Bit that tails `log_file` to its end."""
    config = config_file(tmp, log_file, output)
    state = tempfile.TemporaryDirectory(dir=tmp)  # our default durable ledger, fresh each run
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_CA_BUNDLE=str(cert), STATE_DIRECTORY=state.name)
    # an installed plugin reads its modules' bytecode (pip writes it; make's tree, on the first start):
    # a shell's PYTHONDONTWRITEBYTECODE would have every run compile its stale modules again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    plugin = output.pop("plugin", PLUGIN)
    proc = subprocess.Popen([*wrap, binary, "-q", "-c", str(config), "-e", str(plugin)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = PeakRss(proc.pid)
    _pid, status, usage = os.wait4(proc.pid, 0)
    peak.stop()
    errors = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    state.cleanup()
    assert os.waitstatus_to_exitcode(status) == 0, f"fluent-bit {output} failed:\n{errors[-2000:]}"
    return usage.ru_utime + usage.ru_stime, peak.mb


STARTUP_LINES = 1000  # a run this short costs little more than starting up


def write_log(tmp, size, count):
    log_file = Path(tmp) / f"container-{size}-{count}.log"
    with open(log_file, "wb") as out:
        for record in container_logs(count, size):
            out.write(orjson.dumps(record) + b"\n")
    return log_file


def run_output(binary, name, log_file, count, tmp, port, cert, prefix):
    """(CPU seconds, peak RSS MB, runs short) of one output over `log_file`."""
    output = output_section(name, port, cert)
    if name.startswith("baseline:"):
        output["plugin"] = BASELINE[0]
    short = 0
    for _try in range(3):
        before = Sink.counts["entries"]
        result = fluent_bit_run(binary, log_file, dict(output), tmp, cert, prefix)
        sent = Sink.counts["entries"] - before
        # ours keeps in its hand-off spool, for the next start, what it has not sent
        # within Fluent Bit's grace at exit: such a run did less, and is run again
        if name == "null" or sent >= (count if "aggregation" not in name else 1):
            break
        short += 1
    return (*result, short)


def measure(binary, size, count, names, runs, tmp, port, cert, wrap=""):
    """Each round runs every output over the whole file, and over its first
    STARTUP_LINES: the difference is the cost per line once started, which a
    long-running Fluent Bit pays (start-up is paid once per process)."""
    log_file, startup_file = write_log(tmp, size, count), write_log(tmp, size, STARTUP_LINES)
    line = log_file.stat().st_size / count
    results = {name: [] for name in names}
    startups = {name: [] for name in names}
    for _round in range(runs):
        for name in names:
            prefix = wrap.format(output=name, size=size).split() if name != "null" else []
            results[name].append(run_output(binary, name, log_file, count, tmp, port, cert, prefix))
            startups[name].append(run_output(binary, name, startup_file, STARTUP_LINES, tmp, port, cert, [])[0])
    report(binary, count, line, runs, names, results, startups)


def report(binary, count, line, runs, names, results, startups):
    null_cpu = statistics.median(r[0] for r in results["null"])
    null_rss = statistics.median(r[1] for r in results["null"])
    null_start = statistics.median(startups["null"])
    load = os.getloadavg()
    print(f"\n# {binary}: {count} lines of {line:.0f} B, median of {runs}; `null`: "
          f"{null_cpu * 1e6 / count:.2f} µs/line, {null_rss:.0f} MB; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"| output | µs/line over `null` | runs | once started: µs/line over `null` | "
          f"start-up s over `null` ({STARTUP_LINES} lines) | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name in names:
        if name == "null":
            continue
        over = [(r[0] - null_cpu) * 1e6 / count for r in results[name]]
        started = [((r[0] - start) - (null_cpu - null_start)) * 1e6 / (count - STARTUP_LINES)
                   for r, start in zip(results[name], startups[name])]
        rss = statistics.median(r[1] for r in results[name])
        redone = sum(r[2] for r in results[name])
        note = f" ({redone} short runs again)" if redone else ""
        print(f"| {name} | {statistics.median(over):.2f} | {' '.join(f'{x:.2f}' for x in over)}{note} | "
              f"{statistics.median(started):.2f} | {statistics.median(startups[name]) - null_start:.3f} | "
              f"{rss:.0f} |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fluent-bit", default=os.environ.get("FLUENT_BIT"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="250,2000")
    parser.add_argument("--records", type=int, default=300_000, help="lines of 250 B; a third for 2 KB")
    parser.add_argument("--only", default="")
    parser.add_argument("--baseline", default="", help="another kinesis.so (e.g. main's) to run beside ours")
    parser.add_argument("--wrap", default="", help="a command Fluent Bit runs under, e.g. a profiler")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each PutRecords answer")
    args = parser.parse_args()
    Sink.latency = args.latency
    if not args.fluent_bit:
        sys.exit("versus_c needs a Fluent Bit: --fluent-bit PATH or FLUENT_BIT=PATH")
    every = ["null", *OURS, *C_CORE]
    names = ["null"] + [n for n in every[1:] if not args.only or n in args.only.split(",")]
    if args.baseline:  # each of ours again with another build, in the same rounds: before and after
        BASELINE.append(args.baseline)
        names += [f"baseline:{n}" for n in names if n in OURS]
    with tempfile.TemporaryDirectory() as tmp:
        server, cert = start_sink(tmp)
        for size in (int(s) for s in args.sizes.split(",")):
            count = args.records if size < 1000 else args.records // 3
            measure(args.fluent_bit, size, count, names, args.runs, tmp, server.server_port, cert, args.wrap)
        server.shutdown()


if __name__ == "__main__":
    main()
