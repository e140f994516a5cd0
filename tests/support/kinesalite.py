"""A second Kinesis emulator for the tests: kinesalite (pure JavaScript, from
npm), run with node on 127.0.0.1 with an in-memory store. `make kinesalite`
installs it into .cache/kinesalite; KINESALITE=/path/to/bin/kinesalite picks
another copy. Unlike moto it keeps a split or merged shard's records in the
closed parent, as Kinesis does, and has no UpdateShardCount (only SplitShard
and MergeShards, which is what UpdateShardCount does)."""
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid

import boto3
import pytest

from tests.support import streams
from tests.support.harness import REGION, ROOT

INSTALLED = ROOT / ".cache" / "kinesalite" / "node_modules" / ".bin" / "kinesalite"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kinesalite:
    def __init__(self, program, log_path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [shutil.which("node"), str(program), "--port", str(self.port), "--host", "127.0.0.1",
             "--createStreamMs", "0", "--deleteStreamMs", "0", "--updateStreamMs", "0", "--shardLimit", "100"],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers (400 for a bare GET): up
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"kinesalite did not start (exit {self.proc.poll()})")
                time.sleep(0.1)
        self.client = boto3.client("kinesis", region_name=REGION, endpoint_url=self.url,
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    def create_stream(self, shards=1):
        name = f"s-{uuid.uuid4().hex[:8]}"
        self.client.create_stream(StreamName=name, ShardCount=shards)
        self.wait_active(name)
        return name

    def wait_active(self, stream, timeout=20):
        deadline = time.monotonic() + timeout
        while self.client.describe_stream_summary(StreamName=stream)[
                "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            assert time.monotonic() < deadline, "stream never became ACTIVE"
            time.sleep(0.05)

    def read_all(self, stream, **kwargs):
        return streams.read_all(self.client, stream, **kwargs)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def kinesalite(tmp_path):
    if not shutil.which("node"):
        pytest.skip("kinesalite backend: node is not installed")
    program = os.environ.get("KINESALITE") or INSTALLED
    if not os.path.exists(program):
        pytest.skip(f"kinesalite backend: not installed at {program} (run `make kinesalite`, needs npm)")
    server = Kinesalite(program, tmp_path / "kinesalite.log")
    yield server
    server.stop()
