"""dry_run: a stand-in for the Kinesis client that acknowledges every entry.

Everything before the PutRecords call runs as usual (decoding, shaping,
aggregation, batching, dead letters); nothing contacts AWS, not even for
credentials. What would have been sent is logged: each request at debug, and
a summary at info at most once per `interval` seconds.
"""
import threading
import time

import urllib3

from .client import PutAnswer
from ..telemetry.log import DEBUG

SHARD_ID = "shardId-000000000000"
MAX_HASH_KEY = 2 ** 128 - 1
PREVIEW_BYTES = 200


class DryRunClient:
    def __init__(self, settings, logger, interval=60.0):
        self.settings = settings
        self.log = logger
        self.interval = interval
        self.stream = settings.stream or settings.stream_arn
        self.pool = urllib3.PoolManager()  # never used; the plugin clears it at exit
        self._lock = threading.Lock()
        self._last_summary = 0.0
        self._pending = [0, 0, 0]  # calls, entries, bytes since the last summary
        self._total = [0, 0, 0]

    def describe_stream(self):
        return {"StreamName": self.stream, "StreamStatus": "not checked (dry_run)", "OpenShardCount": 1}

    def list_shards(self):
        return [{"ShardId": SHARD_ID,
                 "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(MAX_HASH_KEY)}}]

    def put_records(self, table, indices):
        """The entries at `indices` of an EntryTable: counted, never sent."""
        size = sum(map(table.sizes.__getitem__, indices))
        if self.log.enabled(DEBUG) and len(indices):
            first = table.data_of(indices[0])[:PREVIEW_BYTES]
            self.log.debug(f"dry run: PutRecords of {len(indices)} records ({size} bytes) to {self.stream}; "
                           f"first partition key {table.key_of(indices[0])!r}, data {first!r}")
        with self._lock:
            for counts in (self._pending, self._total):
                counts[0] += 1
                counts[1] += len(indices)
                counts[2] += size
            now = time.monotonic()
            due = now - self._last_summary >= self.interval
            if due:
                pending, self._pending, self._last_summary = self._pending, [0, 0, 0], now
                total = list(self._total)
        if due:
            self.log.info(f"dry run: would have sent {pending[1]} records ({pending[2]} bytes) in "
                          f"{pending[0]} PutRecords calls to {self.stream}; {total[1]} records "
                          f"({total[2]} bytes) in {total[0]} calls in all")
        return PutAnswer(0, [{"SequenceNumber": "0", "ShardId": SHARD_ID}] * len(indices))
