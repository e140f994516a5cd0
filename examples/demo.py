"""`make demo`: runs the plugin against a local Kinesis endpoint.

Starts moto's Kinesis server on 127.0.0.1, creates a 2-shard stream, ships
records through bin/kinesis.so and reads them back with GetRecords. With a
real Fluent Bit (FLUENT_BIT or `fluent-bit` on PATH) the records come from
its `dummy` input; otherwise the test host drives the plugin the same way
Fluent Bit does, through its C ABI.
"""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.harness import make_chunk  # noqa: E402
from tests.support.streams import read_all  # noqa: E402

RECORDS = 200


def run_fluent_bit(binary, url, stream):
    command = [binary, "-e", str(ROOT / "bin" / "kinesis.so"), "-f", "1",
               "-i", "dummy", "-p", 'dummy={"log":"hello from fluent-bit","kubernetes":{"pod_name":"web-1"}}',
               "-p", f"samples={RECORDS}", "-p", "rate=100",
               "-o", "kinesis", "-m", "*", "-p", "region=us-east-1", "-p", f"stream={stream}",
               "-p", f"endpoint={url}", "-p", "partition_key=kubernetes->pod_name"]
    print("$", " ".join(command))
    proc = subprocess.Popen(command)
    time.sleep(RECORDS / 100 + 4)
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def run_test_host(url, stream):
    print("no fluent-bit found (set FLUENT_BIT to use one): driving the plugin with bin/flb-test-host")
    with tempfile.TemporaryDirectory() as tmp:
        chunk = Path(tmp) / "chunk.mp"
        chunk.write_bytes(make_chunk([{"log": f"hello {i}", "kubernetes": {"pod_name": f"web-{i % 3}"}}
                                      for i in range(RECORDS)]))
        script = "\n".join([f"set 0 region us-east-1", f"set 0 stream {stream}", f"set 0 endpoint {url}",
                            "set 0 partition_key kubernetes->pod_name", "init 0",
                            f"flush 0 demo.log {chunk}", "exit 0", "quit", ""])
        done = subprocess.run([str(ROOT / "bin" / "flb-test-host"), str(ROOT / "bin" / "kinesis.so")],
                              input=script, text=True, capture_output=True, timeout=120)
        sys.stderr.write(done.stderr)
        print(done.stdout.strip())
        return 0 if "flush 1" in done.stdout else 1


def main():
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "demo")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=url)
    client.create_stream(StreamName="demo", ShardCount=2)
    print(f"local Kinesis (moto) on {url}, stream 'demo' with 2 shards")
    binary = os.environ.get("FLUENT_BIT") or shutil.which("fluent-bit")
    rc = run_fluent_bit(binary, url, "demo") if binary else run_test_host(url, "demo")
    contents = read_all(client, "demo")
    print(f"\nread back {len(contents.records)} records with GetRecords; first three:")
    for record in contents.records[:3]:
        print(f"  shard={record.shard_id} key={record.partition_key} data={json.loads(record.data)}")
    server.stop()
    return 0 if rc == 0 and contents.records else 1


if __name__ == "__main__":
    sys.exit(main())
