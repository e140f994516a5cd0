"""A Kinesis front that enforces the per-shard write limits, fast enough for
a stream at its limit (moto stores ~3,000 records/s; this keeps what it is
sent in memory and reads it back at the end).

Limits as the service applies them (DESIGN.md section 3): per shard, 1,000
records/s and 1 MiB/s of data plus partition key (an aggregate is one
record), token buckets holding one second of burst; an entry over them is
answered, in a 200 PutRecords answer, with the service's own per-entry shape:
    {"ErrorCode": "ProvisionedThroughputExceededException",
     "ErrorMessage": "Rate exceeded for shard shardId-000000000001 in stream S under account 123456789012."}
A stored entry gets {"SequenceNumber", "ShardId"}, as from Kinesis.

It serves PutRecords, ListShards and DescribeStreamSummary on 127.0.0.1
(HTTP/1.1, keep-alive), with an optional round trip (`latency`, half before
and half after the limits are applied). Producers are told apart by the
access key id that signs their calls; `timeline` counts per second, producer
and shard what was stored and throttled.
"""
import base64
import hashlib
import json
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import streams  # noqa: E402

MIB = 1024 * 1024
MAX_HASH = 2 ** 128 - 1
ACCOUNT = "123456789012"
THROTTLED = "ProvisionedThroughputExceededException"


def even_ranges(count, prefix="shardId-"):
    """(shard id, low, high) for `count` shards splitting the hash space evenly, as CreateStream does."""
    width = (MAX_HASH + 1) // count
    return [(f"{prefix}{i:012d}", i * width, MAX_HASH if i == count - 1 else (i + 1) * width - 1)
            for i in range(count)]


def hash_of_entry(record):
    explicit = record.get("ExplicitHashKey")
    if explicit:
        return int(explicit)
    return int.from_bytes(hashlib.md5(record["PartitionKey"].encode("utf-8")).digest(), "big")


def data_size(encoded):
    """Bytes of base64 text once decoded, without decoding it."""
    n = len(encoded)
    return n * 3 // 4 - (encoded.endswith("=") + encoded.endswith("=="))


class ShardLimits:
    """Token buckets per shard: records and bytes, refilled at the limit per
    second, holding `burst` seconds of it. `records`/`bytes_` may be a number
    for every shard or a dict shard id -> number (missing: not limited)."""

    def __init__(self, records=1000, bytes_=MIB, burst=1.0, clock=time.monotonic):
        self.records, self.bytes = records, bytes_
        self.burst = burst
        self.clock = clock
        self.buckets = {}  # shard id -> [record tokens, byte tokens, time]
        self.lock = threading.Lock()

    def _limit(self, limit, shard):
        return limit.get(shard) if isinstance(limit, dict) else limit

    def admit(self, shard, size, now=None):
        """Whether the shard takes one more record of `size` bytes (data and key) now."""
        records, data = self._limit(self.records, shard), self._limit(self.bytes, shard)
        now = self.clock() if now is None else now
        with self.lock:
            bucket = self.buckets.get(shard)
            if bucket is None:
                bucket = self.buckets[shard] = [(records or 0) * self.burst, (data or 0) * self.burst, now]
            elapsed, bucket[2] = now - bucket[2], now
            ok = True
            if records is not None:
                bucket[0] = min(records * self.burst, bucket[0] + elapsed * records)
                ok = bucket[0] >= 1
            if data is not None:
                bucket[1] = min(data * self.burst, bucket[1] + elapsed * data)
                ok = ok and bucket[1] >= size
            if ok:
                bucket[0] -= records is not None
                bucket[1] -= size if data is not None else 0
            return ok

    @staticmethod
    def error(shard, stream):
        return {"ErrorCode": THROTTLED,
                "ErrorMessage": f"Rate exceeded for shard {shard} in stream {stream} under account {ACCOUNT}."}


class Stream:
    def __init__(self, name, shards):
        self.name = name
        self.ranges = even_ranges(shards)
        self.starts = [low for _, low, _ in self.ranges]
        self.stored = []  # (shard id, data base64 text, partition key, explicit hash key or None)
        self.sequence = 0

    def shard_of(self, record):
        point = hash_of_entry(record)
        for shard, low, high in self.ranges:
            if low <= point <= high:
                return shard
        raise ValueError("hash outside every shard")

    def list_shards(self):
        return [{"ShardId": shard, "HashKeyRange": {"StartingHashKey": str(low), "EndingHashKey": str(high)},
                 "SequenceNumberRange": {"StartingSequenceNumber": "1"}} for shard, low, high in self.ranges]


class LimitedKinesis:
    """The front's state; LimitedKinesisServer serves it."""

    def __init__(self, limits=None, latency=0.0):
        self.limits = limits or ShardLimits()
        self.latency = latency
        self.streams = {}
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.timeline = defaultdict(lambda: [0, 0, 0])  # (second, producer, shard) -> stored, bytes, throttled
        self.calls = defaultdict(int)                   # producer -> PutRecords calls
        self.first_call = {}                             # producer -> monotonic time
        self.last_stored = {}

    def create_stream(self, name, shards):
        self.streams[name] = Stream(name, shards)
        return name

    def stream_named(self, body):
        name = body.get("StreamName") or (body.get("StreamARN") or "").rpartition("/")[2]
        return self.streams[name]

    def put_records(self, body, producer):
        stream = self.stream_named(body)
        now = time.monotonic()
        second = int(now - self.start)
        answers, failed = [], 0
        with self.lock:
            self.calls[producer] += 1
            self.first_call.setdefault(producer, now)
            for record in body["Records"]:
                shard = stream.shard_of(record)
                size = data_size(record["Data"]) + len(record["PartitionKey"].encode("utf-8"))
                counts = self.timeline[(second, producer, shard)]
                if self.limits.admit(shard, size, now):
                    stream.sequence += 1
                    stream.stored.append((shard, record["Data"], record["PartitionKey"],
                                          record.get("ExplicitHashKey")))
                    answers.append({"SequenceNumber": str(stream.sequence), "ShardId": shard})
                    counts[0] += 1
                    counts[1] += size
                    self.last_stored[producer] = now
                else:
                    answers.append(self.limits.error(shard, stream.name))
                    counts[2] += 1
                    failed += 1
        return {"FailedRecordCount": failed, "Records": answers}

    def contents(self, name):
        """streams.StreamContents of everything stored, de-aggregated with the KCL's shard check."""
        stream = self.streams[name]
        ranges = {shard: (low, high) for shard, low, high in stream.ranges}
        contents = streams.StreamContents()
        for shard, data, key, _explicit in stream.stored:
            contents.kinesis_records += 1
            low, high = ranges[shard]
            streams.add_record(contents, {"Data": base64.b64decode(data), "PartitionKey": key}, shard, low, high)
        return contents

    def buckets_seen(self):
        return {key[2] for key in list(self.timeline)}

    def totals(self, producer=None, first=None, last=None):
        """(stored entries, stored bytes, throttled entries) per shard over seconds first..last."""
        out = defaultdict(lambda: [0, 0, 0])
        for (second, who, shard), counts in list(self.timeline.items()):
            if (producer is None or who == producer) and (first is None or second >= first) \
                    and (last is None or second <= last):
                for i in range(3):
                    out[shard][i] += counts[i]
        return dict(out)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    front = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        front = self.front
        body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        target = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
        credential = self.headers.get("Authorization", "").partition("Credential=")[2].split("/")[0]
        if target == "PutRecords":
            time.sleep(front.latency / 2)
            answer = front.put_records(body, credential)
            time.sleep(front.latency / 2)
        elif target == "ListShards":
            answer = {"Shards": front.stream_named(body).list_shards()}
        elif target == "DescribeStreamSummary":
            stream = front.stream_named(body)
            answer = {"StreamDescriptionSummary": {"StreamName": stream.name, "StreamStatus": "ACTIVE",
                                                   "OpenShardCount": len(stream.ranges)}}
        else:
            answer = {"__type": "UnknownOperationException"}
        data = json.dumps(answer).encode()
        self.send_response(200 if "__type" not in answer else 400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ServedInThread:
    """A server on 127.0.0.1 serving in a daemon thread: `start`, `stop`, `url`."""

    def serve(self, server):
        self.server = server
        self.port = server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class LimitedKinesisServer(ServedInThread):
    """Serves a LimitedKinesis on a free port."""

    def __init__(self, limits=None, latency=0.0):
        self.front = LimitedKinesis(limits, latency)
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"front": self.front}))
        server.daemon_threads = True
        self.serve(server)
