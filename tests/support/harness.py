"""Shared test parts: the Kinesis front on 127.0.0.1, the ABI test host,
chunk builders and reading a stream back."""
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import boto3
import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.kinesis_front import FrontServer  # noqa: E402
from tests.support import streams  # noqa: E402

PLUGIN = ROOT / "bin" / "kinesis.so"
HOST = ROOT / "bin" / "flb-test-host"           # Fluent Bit 2.0+: full flb_api, exported flb_* symbols
HOST_1_9 = ROOT / "bin" / "flb-test-host-1.9"   # Fluent Bit 1.9: one-field flb_api
HOST_BARE = ROOT / "bin" / "flb-test-host-bare"  # exports nothing: a loader that is not Fluent Bit
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}


# ---- chunks ------------------------------------------------------------------

def event_time(seconds):
    whole = int(seconds)
    return msgpack.ExtType(0, struct.pack(">II", whole, int(round((seconds - whole) * 1e9))))


def make_chunk(records, layout="v2", start=1_700_000_000.0, step=0.001):
    """msgpack chunk as Fluent Bit hands it to a flush: v2 `[[t, meta], rec]`,
    v1 `[t, rec]`; timestamps as EventTime unless `layout` is v1-int/v1-float."""
    out = []
    for i, record in enumerate(records):
        t = start + i * step
        if layout == "v2":
            event = [[event_time(t), {}], record]
        elif layout == "v1":
            event = [event_time(t), record]
        elif layout == "v1-int":
            event = [int(t), record]
        elif layout == "v1-float":
            event = [t, record]
        else:
            raise ValueError(layout)
        out.append(msgpack.packb(event, use_bin_type=True))
    return b"".join(out)


def numbered_records(count, prefix="r", **extra):
    return [dict({"log": f"{prefix}-{i:07d}", "n": i}, **extra) for i in range(count)]


# ---- the Kinesis endpoint ----------------------------------------------------

@pytest.fixture(scope="session")
def front_server():
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    os.environ.update(FAKE_CREDENTIALS)
    server = FrontServer().start()
    yield server
    server.stop()


class Kinesis:
    """A boto3 client on the front plus helpers to create and read streams."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.front = server.front
        self.client = boto3.client("kinesis", region_name=REGION, endpoint_url=self.url,
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    def create_stream(self, shards=1, name=None):
        name = name or f"s-{uuid.uuid4().hex[:8]}"
        self.client.create_stream(StreamName=name, ShardCount=shards)
        return name

    def read_all(self, stream, **kwargs):
        return streams.read_all(self.client, stream, **kwargs)


@pytest.fixture
def kinesis(front_server):
    import urllib.request
    front_server.front.reset()  # first: faults a failed test left would answer this reset too
    urllib.request.urlopen(urllib.request.Request(front_server.url + "/moto-api/reset", method="POST")).read()
    return Kinesis(front_server)


# ---- the ABI test host -------------------------------------------------------

class Host:
    """bin/flb-test-host driving bin/kinesis.so as Fluent Bit would."""

    def __init__(self, tmp_path, env=None, stack=None, plugin=PLUGIN, binary=HOST, argv=None):
        """argv: another command line that runs a test host (e.g. in a container)."""
        if not Path(plugin).exists() or not Path(binary).exists():
            pytest.fail("bin/kinesis.so or bin/flb-test-host missing: run `make` first")
        self.tmp = Path(tmp_path)
        self.stderr_path = self.tmp / f"host-{uuid.uuid4().hex[:6]}.log"
        environment = dict(os.environ, **FAKE_CREDENTIALS)
        # the plugin's default durable state (delivery/state_directory.py): per test, as one machine's
        environment["STATE_DIRECTORY"] = str(self.tmp / "state")
        environment.update(env or {})
        if stack:
            environment["FLB_HOST_STACK"] = str(stack)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv or [str(binary), str(plugin)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=environment, text=True, bufsize=1)
        assert self.proc.stdout.readline().strip() == "registered kinesis"
        self._chunks = 0

    def command(self, line, timeout=300):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = []
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            answer = self.proc.stdout.readline().strip()
        finally:
            timer.cancel()
        if not answer:
            raise AssertionError(f"host died on {line!r}; log:\n{self.log()}")
        return answer

    def configure(self, instance, **properties):
        for key, value in properties.items():
            assert self.command(f"set {instance} {key} {value}") == "set"

    def init(self, instance=0, **properties):
        self.configure(instance, **properties)
        answer = self.command(f"init {instance}")
        return int(answer.split()[2])

    def write_chunk(self, data):
        self._chunks += 1
        path = self.tmp / f"chunk-{self._chunks}.mp"
        path.write_bytes(data)
        return path

    def flush(self, data, instance=0, tag="app.log"):
        path = self.write_chunk(data)
        return int(self.command(f"flush {instance} {tag} {path}").split()[1])

    def flush_concurrently(self, jobs):
        """jobs: (instance, tag, chunk bytes); all flushed at once on their own threads."""
        parts = []
        for instance, tag, data in jobs:
            parts += [str(instance), tag, str(self.write_chunk(data))]
        return [int(x) for x in self.command("pflush " + " ".join(parts)).split()[1:]]

    def logs(self):
        """The host's log counters: lines per level, and "foreign" (from a
        thread the host did not create) and "cut" lines, which Fluent Bit
        would lose from Log_File or truncate."""
        return {k: int(v) for k, v in (p.split("=") for p in self.command("logs").split()[1:])}

    def exit(self, instance=0):
        return int(self.command(f"exit {instance}").split()[1])

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("unregister\nquit\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._stderr.close()
        return self.proc.returncode

    def log(self):
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def host(tmp_path):
    hosts = []

    def start(**kwargs):
        h = Host(tmp_path, **kwargs)
        hosts.append(h)
        return h

    yield start
    for h in hosts:
        h.close()


def base_options(kinesis, stream, **extra):
    options = {"region": REGION, "stream": stream, "endpoint": kinesis.url}
    options.update(extra)
    return options


# ---- a real Fluent Bit -------------------------------------------------------

def fluent_bit_binaries():
    """FLUENT_BIT (or `fluent-bit` on PATH) plus FLUENT_BIT_VERSIONS=path1:path2,
    each that exists, once."""
    paths = [os.environ.get("FLUENT_BIT") or shutil.which("fluent-bit") or ""]
    paths += os.environ.get("FLUENT_BIT_VERSIONS", "").split(":")
    found = []
    for path in paths:
        if path and os.access(path, os.X_OK) and os.path.realpath(path) not in map(os.path.realpath, found):
            found.append(path)
    return found


def fluent_bit_version(path):
    """(major, minor, patch) from `fluent-bit --version` ("Fluent Bit v4.2.8")."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    match = re.search(r"Fluent Bit v(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else None


def _fluent_bit_id(path):
    version = fluent_bit_version(path)
    return "v" + ".".join(map(str, version)) if version else os.path.basename(path)


_BINARIES = fluent_bit_binaries()


@pytest.fixture(params=_BINARIES or [None], ids=[_fluent_bit_id(p) for p in _BINARIES] or ["none"])
def fluent_bit(request):
    """Each real Fluent Bit given, in turn; skipped when there is none."""
    if not request.param:
        pytest.skip("no real Fluent Bit: set FLUENT_BIT=/path/to/fluent-bit (and FLUENT_BIT_VERSIONS=p1:p2) "
                    "or put fluent-bit on PATH")
    return request.param
