"""CPU per record of delivery alone (issue 18): whole flushes into a stream
of many shards, default settings, with the HTTP exchange replaced by canned
answers (KinesisClient._post), so neither a sink nor the network adds noise:
lanes, pacing, request bodies, answers, acknowledgements, metrics, ledger.

    .venv/bin/python -m tests.bench.cpu_delivery [--shards 256] [--tree DIR] [--passes 5]

Prints µs of CPU per record: the flush, the shaping alone, the rest (the
difference) and of it Delivery.send, each the best pass over 40,000 container log lines in chunks of
8,000. `--tree`: the plugin from another (built) checkout, for interleaved
comparisons.
"""
import argparse
import os
import sys
import tempfile
import time
from types import SimpleNamespace


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=256)
    parser.add_argument("--tree", default=None)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, os.path.abspath(args.tree))
    flush, shape, send = _measure(args.shards, args.passes)
    print(f"flush {flush:.3f} shaping {shape:.3f} rest {flush - shape:.3f} (of it Delivery.send {send:.3f}) µs/record")


def _canned(shards):
    import orjson
    span = 2 ** 128 // shards
    listed = orjson.dumps({"Shards": [{"ShardId": f"shardId-{i:012d}", "HashKeyRange": {
        "StartingHashKey": str(i * span), "EndingHashKey": str(2 ** 128 - 1 if i == shards - 1 else (i + 1) * span - 1)},
        "SequenceNumberRange": {"StartingSequenceNumber": "1"}} for i in range(shards)]})
    answers = {}

    def post(self, operation, body):
        if operation == "ListShards":
            return SimpleNamespace(status=200, data=listed)
        if operation != "PutRecords":
            return SimpleNamespace(status=200, data=b'{"StreamDescriptionSummary":{}}')
        count = bytes(body).count(b'"PartitionKey"')  # the C buffer the request is sent from
        if count not in answers:
            answers[count] = orjson.dumps({"FailedRecordCount": 0, "Records": [
                {"SequenceNumber": "49650000000000000000000000000000000000000000000000000001",
                 "ShardId": "shardId-000000000007"}] * count})
        return SimpleNamespace(status=200, data=answers[count])
    return post


def _measure(shards, passes):
    import fluentbit_kinesis
    from fluentbit_kinesis.config import Settings
    from fluentbit_kinesis.delivery.client import KinesisClient
    from fluentbit_kinesis.plugin import OutputInstance, tune_garbage_collector
    from fluentbit_kinesis.telemetry.log import Logger
    from tests.bench.cost import container_logs
    from tests.support.harness import FAKE_CREDENTIALS, make_chunk
    print(f"# plugin from {os.path.dirname(fluentbit_kinesis.__file__)}", file=sys.stderr)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["STATE_DIRECTORY"] = tempfile.mkdtemp()
    KinesisClient._post = _canned(shards)
    records = container_logs(40_000)
    chunks = [make_chunk(records[i:i + 8000]) for i in range(0, len(records), 8000)]
    settings = Settings(region="us-east-1", stream="s", endpoint="http://127.0.0.1:9")
    instance = OutputInstance(settings, Logger(lambda level, text: None, "cpu", 1))
    instance.flush(chunks[0], "warm")
    tune_garbage_collector()
    sending, send_of = [0.0], instance.delivery.send

    def timed_send(*args):
        start = time.process_time()
        try:
            return send_of(*args)
        finally:
            sending[0] += time.process_time() - start
    instance.delivery.send = timed_send
    flush = shape = send = float("inf")
    for _ in range(passes):
        sending[0] = 0.0
        start = time.process_time()
        for chunk in chunks:
            assert instance.flush(chunk, "app") == 1
        flush, send = min(flush, time.process_time() - start), min(send, sending[0])
        start = time.process_time()
        for chunk in chunks:
            instance.shaper.shape_chunk(chunk)
        shape = min(shape, time.process_time() - start)
    return flush / len(records) * 1e6, shape / len(records) * 1e6, send / len(records) * 1e6


if __name__ == "__main__":
    main()
