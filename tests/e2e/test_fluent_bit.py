"""End to end under real Fluent Bit builds (FLUENT_BIT=/path or `fluent-bit`
on PATH, plus FLUENT_BIT_VERSIONS=path1:path2; each test runs under each, ids
by version; skipped when there is none): tail a file of numbered lines into
moto through bin/kinesis.so, read every shard back, and check each line
arrived exactly once, that Fluent Bit shut down cleanly, and that the
plugin's lines are in Fluent Bit's log file.

E2E_RECORDS sets the line count (default 100,000)."""
import collections
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from tests.support.harness import PLUGIN, REGION, fluent_bit_version
from tests.telemetry.test_ops import free_port

RECORDS = int(os.environ.get("E2E_RECORDS", "100000"))


def write_lines(path, count):
    with open(path, "w") as out:
        for i in range(count):
            out.write(f"e2e-{i:07d} GET /api/v1/items?page={i % 97} 200 {i % 1000}ms user-agent=curl/8.5\n")


def output_section(kinesis, stream, **extra):
    options = {"name": "kinesis", "match": "*", "region": REGION, "stream": stream, "endpoint": kinesis.url}
    options.update(extra)
    return "[OUTPUT]\n" + "".join(f"    {k} {v}\n" for k, v in options.items())


def classic_config(tmp_path, log_file, outputs):
    (tmp_path / "plugins.conf").write_text(f"[PLUGINS]\n    Path {PLUGIN}\n")
    return ("[SERVICE]\n    flush 1\n    grace 10\n    log_level info\n    plugins_file plugins.conf\n"
            f"[INPUT]\n    name tail\n    path {log_file}\n    read_from_head true\n"
            "    buffer_chunk_size 256k\n    buffer_max_size 256k\n" + "".join(outputs))


def run_fluent_bit(binary, args, kinesis, expected_entries, tmp_path, timeout=900, before_stop=None):
    log_path = tmp_path / "fluent-bit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        deadline = time.monotonic() + timeout
        try:
            while kinesis.front.counters.entries_received < expected_entries:
                assert proc.poll() is None, f"fluent-bit exited early:\n{log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "timed out waiting for the records"
                time.sleep(0.5)
            time.sleep(2)
            if before_stop:
                before_stop()
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(60)
    return rc, log_path.read_text(errors="replace")


def assert_lines_once(kinesis, stream, count):
    contents = kinesis.read_all(stream)
    seen = collections.Counter(json.loads(d)["log"].split()[0] for d in contents.data)
    missing = count - sum(1 for i in range(count) if seen[f"e2e-{i:07d}"])
    twice = sum(1 for n in seen.values() if n > 1)
    assert (missing, twice, len(contents.data)) == (0, 0, count)


def assert_clean_exit(rc, log):
    assert rc == 0, log[-3000:]
    for bad in ("SIGSEGV", "SIGABRT", "Segmentation", "failed to initialize"):
        assert bad not in log, log[-3000:]
    assert "stopped after" in log  # our ExitCtx ran


def plugin_lines(text):
    return [line for line in text.splitlines() if "[output:kinesis:" in line]


def logger_counts(port):
    """Fluent Bit's own logger metrics (4.x): lines counted per level."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/metrics/prometheus", timeout=10).read().decode()
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^fluentbit_logger_logs_total\{message_type="(\w+)"\} (\S+)$', text, re.M)}


def test_one_instance_logs_in_log_file(fluent_bit, kinesis, tmp_path):
    stream = kinesis.create_stream(shards=2)
    write_lines(tmp_path / "app.log", RECORDS)
    log_file = tmp_path / "log-file.log"
    port = free_port()
    args = ["-e", str(PLUGIN), "-f", "1", "-l", str(log_file), "-H", "-P", str(port),
            "-i", "tail", "-p", f"path={tmp_path / 'app.log'}",
            "-p", "read_from_head=true", "-o", "kinesis", "-m", "*", "-p", f"region={REGION}",
            "-p", f"stream={stream}", "-p", f"endpoint={kinesis.url}", "-p", "metrics_log_interval=1"]
    counted = {}

    def count_lines():
        """Our info lines in Log_File against Fluent Bit's count of info lines,
        which its metrics page shows as of its last collection: a few seconds late."""
        if (fluent_bit_version(fluent_bit) or (0,)) < (4, 0):  # logger metrics are 4.x's
            return
        deadline = time.monotonic() + 30
        while not counted or counted["info"] < counted["lines"] and time.monotonic() < deadline:
            time.sleep(1)
            lines = log_file.read_text().count(" info] [output:kinesis:")
            counted.update(logger_counts(port), lines=lines)

    rc, output = run_fluent_bit(fluent_bit, args, kinesis, RECORDS, tmp_path, before_stop=count_lines)
    assert rc == 0, output[-3000:]
    log = log_file.read_text(errors="replace")
    assert_clean_exit(rc, log)
    lines = plugin_lines(log)
    assert any("ready: stream=" in line for line in lines)
    assert any("metrics: " in line for line in lines)  # from the plugin's background thread
    assert any(f"stopped after {RECORDS} records" in line for line in lines)
    assert plugin_lines(output) == [], output[-3000:]  # nothing past Log_File
    if counted:  # each of our info lines counted with Fluent Bit's own
        assert counted["info"] >= counted["lines"] > 3, counted  # a few lines, whatever E2E_RECORDS
    assert_lines_once(kinesis, stream, RECORDS)


def test_two_instances_and_workers(fluent_bit, kinesis, tmp_path):
    s1, s2 = kinesis.create_stream(shards=2), kinesis.create_stream(shards=3)
    log_file = tmp_path / "app.log"
    write_lines(log_file, RECORDS)
    config = classic_config(tmp_path, log_file, [output_section(kinesis, s1, workers=2),
                                                 output_section(kinesis, s2, partition_key="log")])
    (tmp_path / "fluent-bit.conf").write_text(config)
    rc, log = run_fluent_bit(fluent_bit, ["-c", "fluent-bit.conf"], kinesis, 2 * RECORDS, tmp_path)
    assert_lines_once(kinesis, s1, RECORDS)
    assert_lines_once(kinesis, s2, RECORDS)
    assert_clean_exit_of_instances(fluent_bit, rc, log)


def assert_clean_exit_of_instances(fluent_bit, rc, log):
    """A clean exit of a Fluent Bit with several instances of the plugin (check delivery first)."""
    if (fluent_bit_version(fluent_bit) or (99,)) < (2, 0, 7) and rc != 0:
        # its flb_proxy_cb_exit runs the shared plugin's ExitCtx once (the last
        # instance's), destroys the proxy, then reads it again for the next instance
        pytest.xfail("Fluent Bit before 2.0.7 crashes at shutdown with two instances of an external plugin")
    assert_clean_exit(rc, log)


def test_yaml_config_with_plugins_list(fluent_bit, kinesis, tmp_path):
    if (fluent_bit_version(fluent_bit) or (99,)) < (3, 2):
        pytest.skip("YAML `plugins:` needs Fluent Bit 3.2+")
    stream = kinesis.create_stream()
    count = min(RECORDS, 5000)
    write_lines(tmp_path / "app.log", count)
    (tmp_path / "fluent-bit.yaml").write_text(f"""
service:
  flush: 1
  grace: 10
plugins:
  - {PLUGIN}
pipeline:
  inputs:
    - name: tail
      path: {tmp_path / 'app.log'}
      read_from_head: true
  outputs:
    - name: kinesis
      match: "*"
      region: {REGION}
      stream: {stream}
      endpoint: {kinesis.url}
      workers: 2
""")
    rc, log = run_fluent_bit(fluent_bit, ["-c", "fluent-bit.yaml"], kinesis, count, tmp_path)
    assert_clean_exit(rc, log)
    assert_lines_once(kinesis, stream, count)


def test_bad_option_fails_start_with_one_line(fluent_bit, kinesis, tmp_path):
    proc = subprocess.run([fluent_bit, "-e", str(PLUGIN), "-i", "dummy", "-o", "kinesis", "-p", "region=us-east-1",
                           "-p", "stream=x", "-p", "compression=lz4"], capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert output.count("option 'compression': 'lz4' is not valid; allowed: none, zlib, gzip, zstd") == 1


def distinct_lines(kinesis, stream):
    return collections.Counter(json.loads(r.data)["log"].split()[0] for r in kinesis.read_all(stream).everything)


RESTART_LINES = int(os.environ.get("RESTART_LINES", "6000"))
RESTART_RATE = 300  # lines a second, as the user wrote them


def restart_config(tmp_path, kinesis, stream, log_file, workers):
    """A user's config: filesystem storage on the input; on the output only
    region and stream (and the test's endpoint), plus `workers` when given."""
    (tmp_path / "plugins.conf").write_text(f"[PLUGINS]\n    Path {PLUGIN}\n")
    extra = {"workers": workers} if workers is not None else {}
    (tmp_path / "fluent-bit.conf").write_text(
        "[SERVICE]\n    flush 1\n    grace 5\n    log_level info\n    plugins_file plugins.conf\n"
        f"    storage.path {tmp_path / 'storage'}\n"
        f"[INPUT]\n    name tail\n    path {log_file}\n    read_from_head true\n    db {tmp_path / 'tail.db'}\n"
        "    storage.type filesystem\n    refresh_interval 1\n"
        + output_section(kinesis, stream, **extra))


def line_text(i):
    return f"e2e-{i:07d} GET /api/v1/items?page={i % 97} 200 {i % 1000}ms user-agent=curl/8.5"


def write_at_rate(path, count, rate, progress):
    """Appends numbered lines at `rate` a second; progress[0] counts them."""
    with open(path, "a") as out:
        for i in range(count):
            out.write(line_text(i) + "\n")
            progress[0] = i + 1
            if i % (rate // 10) == rate // 10 - 1:
                out.flush()
                time.sleep(0.1)


@pytest.mark.parametrize("workers", [None, 2], ids=["default_workers", "workers_2"])
@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_restarts_with_the_defaults_lose_and_duplicate_nothing(fluent_bit, kinesis, tmp_path, workers, stop):
    """The issue's user: storage.type filesystem on the input, nothing but
    region and stream on the output (no workers, no ledger_path), 20% of
    entries throttled, lines written at 300/s; Fluent Bit is stopped (SIGTERM
    or SIGKILL) at 40% and at 70% of the writing and started again at once.
    SIGTERM: nothing lost, nothing twice. SIGKILL: nothing lost, twice at most
    the records of the requests in flight at each kill (500 per flush in flight).
    A line `tail` itself tears at a stop (RELIABILITY.md) is counted apart."""
    stream = kinesis.create_stream(shards=2)
    log_file = tmp_path / "app.log"
    log_file.touch()
    restart_config(tmp_path, kinesis, stream, log_file, workers)
    kinesis.front.faults.entry_throttle_rate = 0.2
    progress = [0]
    writer = threading.Thread(target=write_at_rate, args=(log_file, RESTART_LINES, RESTART_RATE, progress),
                              daemon=True)
    log_path = tmp_path / "fluent-bit.log"
    stops = [int(RESTART_LINES * 0.4), int(RESTART_LINES * 0.7)]
    with open(log_path, "ab") as log:
        def start():
            return subprocess.Popen([fluent_bit, "-c", "fluent-bit.conf"], stdout=log, stderr=subprocess.STDOUT,
                                    cwd=tmp_path)
        proc = start()
        writer.start()
        for at in stops:
            while progress[0] < at:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                time.sleep(0.05)
            if stop == "sigkill":
                proc.kill()
            else:
                proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) in (0, -signal.SIGKILL), log_path.read_text()[-3000:]
            proc = start()
        writer.join()
        deadline = time.monotonic() + 180
        while len(distinct_lines(kinesis, stream)) < RESTART_LINES and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(1)
        time.sleep(3)  # anything sent twice would arrive now
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    text = log_path.read_text(errors="replace")
    logs = collections.Counter(json.loads(r.data)["log"] for r in kinesis.read_all(stream).everything)
    seen = collections.Counter(log.split()[0] for log in logs.elements())
    # Fluent Bit's tail can tear a line when it is stopped with part of it in its read buffer:
    # the head is never handed over and the next run sends the rest as a line of its own
    fragments = [log for log in logs if not re.match(r"e2e-[0-9]{7} ", log)]
    lost = [i for i in range(RESTART_LINES) if not seen[f"e2e-{i:07d}"]]
    torn = [i for i in lost if any(line_text(i).endswith(part) for part in fragments)]
    missing = len(lost) - len(torn)
    duplicated = sum(seen.values()) - len(seen)
    print(f"\nFluent Bit {stop} at 40% and 70%, workers {workers or 'default'}, filesystem storage, "
          f"20% throttled: {RESTART_LINES} lines, {missing} missing, {duplicated} duplicated, "
          f"{len(torn)} torn by tail (lines {torn}: {fragments[:3]})")
    assert rc == 0, text[-3000:]
    assert text.count("durable state (ledger, hand-off spool) in") == 3
    assert "dropped" not in text and "not delivered before exit; their records" not in text
    assert missing == 0
    if stop == "sigterm":
        assert duplicated == 0
    else:
        assert duplicated <= len(stops) * 500 * (workers or 1)


# ---- Fluent Bit's own metrics endpoint, and the engine thread -------------------

def fluent_bit_metrics(port):
    """{sample name with labels: value} from /api/v2/metrics/prometheus."""
    url = f"http://127.0.0.1:{port}/api/v2/metrics/prometheus"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+)(\{[^}]*\})? (\S+)", line)
        if match and not line.startswith("#"):
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_plugin_metrics_on_fluent_bits_endpoint(fluent_bit, kinesis, tmp_path):
    if (fluent_bit_version(fluent_bit) or (0,)) < (2, 0):
        pytest.skip("Fluent Bit before 2.0 gives plugins no metrics context (metrics_port serves them)")
    s1, s2 = kinesis.create_stream(shards=2), kinesis.create_stream()
    port = free_port()
    (tmp_path / "plugins.conf").write_text(f"[PLUGINS]\n    Path {PLUGIN}\n")
    (tmp_path / "fluent-bit.conf").write_text(
        "[SERVICE]\n    flush 1\n    grace 5\n    plugins_file plugins.conf\n"
        f"    http_server on\n    http_listen 127.0.0.1\n    http_port {port}\n"
        "[INPUT]\n    name dummy\n    rate 50\n"
        "[OUTPUT]\n    name null\n    match *\n"  # kinesis.1 then is Fluent Bit's name for the next output
        + output_section(kinesis, s1, alias="to_s1", workers=1, aggregation="true")
        + output_section(kinesis, s2))
    log_path = tmp_path / "fluent-bit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([fluent_bit, "-c", "fluent-bit.conf"], stdout=log, stderr=subprocess.STDOUT,
                                cwd=tmp_path)
        try:
            deadline = time.monotonic() + 60
            samples = {}
            while time.monotonic() < deadline:
                time.sleep(1)
                assert proc.poll() is None, log_path.read_text()[-3000:]
                try:
                    samples = fluent_bit_metrics(port)
                except OSError:
                    continue
                if samples.get('fluentbit_kinesis_records_sent_total{name="kinesis.2"}', 0) >= 100 and \
                        samples.get('fluentbit_kinesis_records_sent_total{name="to_s1"}', 0) >= 100:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(60)
    log = log_path.read_text(errors="replace")
    assert rc == 0, log[-3000:]
    assert samples.get('fluentbit_kinesis_records_sent_total{name="to_s1"}', 0) >= 100, sorted(samples)
    assert samples.get('fluentbit_kinesis_records_sent_total{name="kinesis.2"}', 0) >= 100, sorted(samples)
    assert samples['fluentbit_kinesis_aggregation_ratio{name="to_s1"}'] > 1
    assert samples['fluentbit_kinesis_aggregation_ratio{name="kinesis.2"}'] == 1
    for family in ("bytes_sent_total", "put_records_calls_total", "retries_total", "dead_lettered_records_total"):
        assert f'fluentbit_kinesis_{family}{{name="to_s1"}}' in samples, family
    assert 'fluentbit_output_proc_records_total{name="to_s1"}' in samples  # named as Fluent Bit's own


def lines_in(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


@pytest.mark.parametrize("fault", ["down_until", "hang_until"])
def test_outage_with_default_workers_keeps_the_other_output_running(fluent_bit, kinesis, tmp_path, fault):
    """OUTAGE_SECONDS (default 30) of the endpoint down (connections reset) or
    never answering, `workers` left at 0: the `file` output of the same Fluent
    Bit keeps >= 90% of its rate, and every line reaches the stream exactly once."""
    outage = float(os.environ.get("OUTAGE_SECONDS", "30"))
    rate, before = 200, 10.0
    stream = kinesis.create_stream(shards=2)
    source, copy = tmp_path / "app.log", tmp_path / "out" / "copy.log"
    copy.parent.mkdir()
    (tmp_path / "plugins.conf").write_text(f"[PLUGINS]\n    Path {PLUGIN}\n")
    (tmp_path / "fluent-bit.conf").write_text(
        "[SERVICE]\n    flush 1\n    grace 10\n    plugins_file plugins.conf\n"
        f"[INPUT]\n    name tail\n    path {source}\n    refresh_interval 1\n"
        f"[OUTPUT]\n    name file\n    match *\n    path {copy.parent}\n    file {copy.name}\n    format plain\n"
        + output_section(kinesis, stream, http_request_timeout=2))
    written = 0
    stop = threading.Event()

    def writer():  # `rate` numbered lines a second
        nonlocal written
        with open(source, "a") as out:
            while not stop.is_set():
                for _ in range(rate // 10):
                    out.write(f"e2e-{written:07d} GET /x 200\n")
                    written += 1
                out.flush()
                time.sleep(0.1)

    log_path = tmp_path / "fluent-bit.log"
    source.touch()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([fluent_bit, "-c", "fluent-bit.conf"], stdout=log, stderr=subprocess.STDOUT,
                                cwd=tmp_path)
        thread = threading.Thread(target=writer, daemon=True)
        try:
            time.sleep(3)
            thread.start()
            time.sleep(5)
            start = lines_in(copy)
            time.sleep(before)
            normal = (lines_in(copy) - start) / before
            setattr(kinesis.front.faults, fault, time.monotonic() + outage)
            start = lines_in(copy)
            time.sleep(outage)
            during = (lines_in(copy) - start) / outage
            time.sleep(5)
            stop.set()
            thread.join()
            deadline = time.monotonic() + 120
            while len(kinesis.read_all(stream).data) < written and time.monotonic() < deadline:
                time.sleep(1)
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(60)
    log = log_path.read_text(errors="replace")
    print(f"other output: {normal:.1f} lines/s before, {during:.1f} lines/s during a {outage:g} s {fault} "
          f"({100 * during / normal:.0f}%)")
    assert rc == 0, log[-3000:]
    assert kinesis.front.counters.resets > 0
    assert during >= 0.9 * normal, (normal, during)
    contents = kinesis.read_all(stream)
    seen = collections.Counter(json.loads(d)["log"].split()[0] for d in contents.data)
    assert (sum(1 for i in range(written) if seen[f"e2e-{i:07d}"] != 1), len(contents.data)) == (0, written)
    assert "chunks are delivered from a background queue" in log
