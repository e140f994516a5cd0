"""CPU per record of a whole flush (decode, shape, pack, sign, send), plain
vs aggregated, against a local sink that answers at once.

    .venv/bin/python -m tests.bench.cpu_aggregation

The sink runs in its own process (so its CPU is not counted) and answers
ListShards with 4 even shards and PutRecords with the shard each entry hashes
to, as Kinesis would. The plugin's Python pipeline (OutputInstance.flush, the
code the shim calls) runs in this process; the best of 3 rounds is reported.
"""
import hashlib
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHARDS = 4
SPAN = 2 ** 128 // SHARDS


def _shard_list():
    return [{"ShardId": f"shardId-{i}",
             "HashKeyRange": {"StartingHashKey": str(i * SPAN),
                              "EndingHashKey": str((i + 1) * SPAN - 1 if i < SHARDS - 1 else 2 ** 128 - 1)},
             "SequenceNumberRange": {"StartingSequenceNumber": "1"}} for i in range(SHARDS)]


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("X-Amz-Target", "").endswith("ListShards"):
            answer = {"Shards": _shard_list()}
        else:
            records = json.loads(body)["Records"]
            answer = {"FailedRecordCount": 0,
                      "Records": [{"ShardId": f"shardId-{min(SHARDS - 1, _hash(r) // SPAN)}",
                                   "SequenceNumber": "1"} for r in records]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _hash(record):
    if "ExplicitHashKey" in record:
        return int(record["ExplicitHashKey"])
    return int.from_bytes(hashlib.md5(record["PartitionKey"].encode()).digest(), "big")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--sink":
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), _Sink).serve_forever()
        return
    from fluentbit_kinesis.config import Settings
    from fluentbit_kinesis.telemetry.log import Logger
    from fluentbit_kinesis.plugin import OutputInstance
    from tests.support.harness import FAKE_CREDENTIALS, make_chunk
    from tests.bench.cost import container_logs

    os.environ.update(FAKE_CREDENTIALS)
    port = 18000 + os.getpid() % 1000
    sink = subprocess.Popen([sys.executable, "-m", "tests.bench.cpu_aggregation", "--sink", str(port)])
    try:
        time.sleep(1.0)
        records = container_logs(20_000)
        chunks = [make_chunk(records[i:i + 2000]) for i in range(0, len(records), 2000)]
        for aggregation in (False, True):
            settings = Settings(region="us-east-1", stream="s", endpoint=f"http://127.0.0.1:{port}",
                                partition_key=["kubernetes", "pod_name"], aggregation=aggregation)
            instance = OutputInstance(settings, Logger(lambda level, text: None, "cpu", 1))
            instance.flush(chunks[0], "warm-up")
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                for chunk in chunks:
                    assert instance.flush(chunk, "app") == 1
                best = min(best, time.process_time() - started)
            name = "aggregated" if aggregation else "plain"
            print(f"{name}: {best / len(records) * 1e6:.2f} µs CPU per record")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
