"""What aggregation saves: Kinesis records and PUT payload units for typical
container logs, plain vs aggregated vs aggregated + zlib.

    .venv/bin/python -m tests.bench.cost [--records 100000]

The records go through the real plugin (bin/kinesis.so driven by the ABI test
host) into moto on 127.0.0.1, and are read back from the stream: a PUT payload
unit is 25 KB, and each Kinesis record costs ceil((data + partition key) / 25 KB)
units. Every variant is checked to deliver every record exactly once.
"""
import argparse
import json
import logging
import math
import os
import random
import sys
import tempfile
import time
import urllib.request

from fluentbit_kinesis.pipeline.compression import decompress
from tests.support import streams
from tests.support.harness import FAKE_CREDENTIALS, REGION, Host, make_chunk
from tests.support.kinesis_front import FrontServer

UNIT = 25 * 1024
CHUNK_RECORDS = 2000  # ~500 KB, a typical Fluent Bit chunk
SHARDS = 4
WORDS = ("GET POST PUT /api/v1/orders /api/v1/users /healthz status=200 status=404 status=500 latency_ms "
         "user_id request_id upstream cache hit miss retry timeout connection pool session token "
         "checkout payment inventory warn info debug error").split()


def container_logs(count, pods=50, seed=42):
    rng = random.Random(seed)
    names = [f"web-{rng.getrandbits(32):08x}-{rng.getrandbits(20):05x}" for _ in range(pods)]
    out = []
    for i in range(count):
        pod = rng.randrange(pods)
        message = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 13)))
        out.append({
            "log": f"{i:06d} {message}",
            "stream": rng.choice(("stdout", "stderr")),
            "time": f"2026-11-22T04:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 1000:03d}Z",
            "kubernetes": {"pod_name": names[pod], "namespace_name": "shop",
                           "container_name": "web", "host": f"ip-10-0-{pod % 8}-17.ec2.internal"},
        })
    return out


def raw_records(client, stream):
    shards = client.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            answer = client.get_records(ShardIterator=iterator, Limit=10000)
            yield from answer["Records"]
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")


def run(variant, options, records, server, client, workdir):
    stream = f"cost-{variant.replace(' ', '-').replace('+', '')}"
    client.create_stream(StreamName=stream, ShardCount=SHARDS)
    host = Host(workdir)
    properties = {"region": REGION, "stream": stream, "endpoint": server.url,
                  "partition_key": "kubernetes->pod_name", **options}
    started = time.monotonic()
    assert host.init(**properties) == 1, host.log()
    for start in range(0, len(records), CHUNK_RECORDS):
        assert host.flush(make_chunk(records[start:start + CHUNK_RECORDS])) == 1, host.log()
    host.exit()
    host.close()
    seconds = time.monotonic() - started
    kinesis_records = units = payload = 0
    for record in raw_records(client, stream):
        size = len(record["Data"]) + len(record["PartitionKey"].encode())
        kinesis_records += 1
        payload += size
        units += math.ceil(size / UNIT)
    contents = streams.read_all(client, stream)
    codec = options.get("compression", "none")
    seen = sorted(json.loads(decompress(codec, r.data))["log"][:6] for r in contents.records)
    if seen != [f"{i:06d}" for i in range(len(records))] or contents.dropped_aggregates:
        sys.exit(f"{variant}: records missing, duplicated or dropped by the KCL rule")
    return {"variant": variant, "kinesis_records": kinesis_records, "units": units,
            "payload_mb": payload / 1e6, "seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.update(FAKE_CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    records = container_logs(args.records)
    average = sum(len(json.dumps(r, separators=(",", ":"))) for r in records) / len(records)
    server = FrontServer().start()
    import boto3
    client = boto3.client("kinesis", region_name=REGION, endpoint_url=server.url,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    variants = [("plain", {}), ("aggregated", {"aggregation": "true"}),
                ("aggregated + zlib", {"aggregation": "true", "compression": "zlib"})]
    results = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for name, options in variants:
                urllib.request.urlopen(urllib.request.Request(server.url + "/moto-api/reset", method="POST")).read()
                results.append(run(name, options, records, server, client, workdir))
    finally:
        server.stop()
    plain = results[0]
    print(f"{args.records} container log records, {average:.0f} B of JSON on average, 50 pods, "
          f"partition_key kubernetes->pod_name, {SHARDS} shards, chunks of {CHUNK_RECORDS}")
    print()
    print("| variant | Kinesis records | PUT payload units (25 KB) | payload MB | units vs plain |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['variant']} | {r['kinesis_records']:,} | {r['units']:,} | {r['payload_mb']:.1f} | "
              f"{plain['units'] / r['units']:.1f}x fewer |")


if __name__ == "__main__":
    main()
