"""The Kinesis client, counting each PutRecords call into the instance's
metrics (telemetry.metrics): calls, acknowledged entries, throttles."""
from .client import THROTTLE_ERRORS, RequestError


class CountedClient:
    def __init__(self, client, metrics, shard_of=None):
        self.client = client
        self.metrics = metrics
        self.shard_of = shard_of  # entry -> predicted shard id, for throttled entries

    def __getattr__(self, name):
        return getattr(self.client, name)

    def put_records(self, entries):
        try:
            answer = self.client.put_records(entries)
        except RequestError as exc:
            self.metrics.call_failed(exc, entries)
            raise
        acked, _, failed, failed_answers = answer.outcomes(entries)
        shard_of = self.shard_of
        throttled = [shard_of(entry) if shard_of else "unknown"
                     for entry, result in zip(failed, failed_answers) if result["ErrorCode"] in THROTTLE_ERRORS]
        # all acknowledged (the usual case): the columns the request was built from
        self.metrics.call_done(acked, throttled, answer.columns if acked is entries else None)
        return answer
