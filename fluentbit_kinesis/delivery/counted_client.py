"""The Kinesis client, counting each PutRecords call into the instance's
metrics (telemetry.metrics): calls, acknowledged entries, throttles."""
from .client import THROTTLE_ERRORS, RequestError
from ..pipeline.entry_kernels import sum_at


class CountedClient:
    def __init__(self, client, metrics, shard_of=None):
        self.client = client
        self.metrics = metrics
        self.shard_of = shard_of  # entry tuple -> predicted shard id, for throttled entries

    def __getattr__(self, name):
        return getattr(self.client, name)

    def put_records(self, table, indices):
        """client.put_records of the entries at `indices` of an EntryTable, counted."""
        try:
            answer = self.client.put_records(table, indices)
        except RequestError as exc:
            self.metrics.call_failed(exc, indices)
            raise
        acked, _, failed, failed_answers = answer.outcomes(indices)
        shard_of = self.shard_of
        throttled = [shard_of(table.entry(i)) if shard_of else "unknown"
                     for i, result in zip(failed, failed_answers) if result["ErrorCode"] in THROTTLE_ERRORS]
        self.metrics.call_done(table, acked, throttled, sum_at(table.sizes, acked))  # natively: no Python step per entry
        return answer
