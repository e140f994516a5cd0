"""Sends entries with PutRecords until each one is acknowledged.

Only failed entries are resent, in their original order, after an
exponential backoff with jitter; when the retry budget runs out, delivery
reports failure and the flush answers FLB_RETRY (max_retries -1: no budget,
retry until delivered or shutdown). Entries are paced per predicted shard by
pacing.ShardLimiter. Acknowledged entries are reported through
`on_acked(entries, answers)`, once per request, so the ledger can skip them
if Fluent Bit hands the same chunk back.
"""
import gc
import os
import random
import threading
import time
from dataclasses import dataclass, field

from . import batching
from .client import THROTTLE_ERRORS, RequestError
from ..telemetry.redact import redact
from .pacing import ShardLimiter

MAX_BACKOFF = 10.0


# An entry is a tuple (data bytes, partition key, explicit hash key or None,
# events), where events is the event index or list of indices it carries.

@dataclass
class Outcome:
    delivered: bool
    entries: int = 0  # entries (Kinesis records) this send was given
    attempts: int = 0
    failed_entries: int = 0
    last_error: str = ""
    throttled: dict = field(default_factory=dict)  # shard or "request" -> count


class Delivery:
    def __init__(self, client, settings, logger, stop_event=None, predict_shard=None, on_stalled=None):
        self.client = client
        self.max_count = settings.max_records_per_request
        self.max_bytes = settings.max_request_bytes
        self.max_retries = settings.max_retries
        self.backoff_increment = settings.backoff_increment
        self.logger = logger
        self.stop_event = stop_event or threading.Event()
        self.limiter = ShardLimiter(predict_shard)
        self.on_stalled = on_stalled or (lambda: None)  # called after each failed round
        self.failing_since = None  # monotonic time of the first failure since the last success

    def backoff(self, attempt):
        delay = min(MAX_BACKOFF, self.backoff_increment * (2 ** (attempt - 1)))
        return delay * random.uniform(0.5, 1.0)

    def send(self, entries, on_acked):
        """Delivers every entry; returns an Outcome. A round sends what the
        per-shard limiter lets through; entries it holds back wait for their
        shard's tokens without using up a try."""
        pending = list(entries)
        outcome = Outcome(delivered=False, entries=len(pending))
        tries = {}  # id(entry) -> failed tries: the budget is per entry, so entries
        # held back by the limiter or sent late do not pay for others' failures
        while pending:
            ready, deferred, wait = self.limiter.split(pending)
            failed = []
            groups = list(batching.requests(ready, self.max_count, self.max_bytes))
            for number, group in enumerate(groups):
                failed_here, fatal = self._send_group(group, on_acked, outcome)
                failed.extend(failed_here)
                if fatal:  # retrying cannot help now (no stream, no access): give up this flush
                    for rest in groups[number + 1:]:
                        failed.extend(rest)
                    outcome.failed_entries = len(failed) + len(deferred)
                    outcome.attempts = max(outcome.attempts, 1)
                    self.on_stalled()
                    return outcome
            if not failed and not deferred:
                break
            pending = _in_order(pending, failed, deferred)
            outcome.failed_entries = len(pending)
            if failed:
                worst = 0
                for entry in failed:
                    count = tries[id(entry)] = tries.get(id(entry), 0) + 1
                    worst = max(worst, count)
                outcome.attempts = max(outcome.attempts, worst)
                self.on_stalled()
                if 0 <= self.max_retries < worst:
                    return outcome
                pause = self.backoff(worst)
            else:
                pause = wait
            if self.stop_event.wait(pause):
                return outcome  # shutting down: Fluent Bit keeps the chunk
        outcome.delivered = True
        outcome.failed_entries = 0
        return outcome

    def _send_group(self, group, on_acked, outcome):
        """Sends one request; returns (entries that failed, whether it was fatal)."""
        try:
            answer = self.client.put_records(group)
        except RequestError as exc:
            if exc.throttled:
                outcome.throttled["request"] = outcome.throttled.get("request", 0) + len(group)
            outcome.last_error = str(exc)
            self.logger.debug(f"PutRecords of {len(group)} entries failed: {exc}")
            self._failing()
            return group, not exc.retryable
        acked, acked_answers, failed, failed_answers = answer.outcomes(group)
        if acked:
            on_acked(acked, acked_answers)
        throttled = []
        for entry, result in zip(failed, failed_answers):
            if result["ErrorCode"] in THROTTLE_ERRORS:
                throttled.append(entry)
                shard = self.limiter.predict_shard(entry)
                outcome.throttled[shard] = outcome.throttled.get(shard, 0) + 1
            outcome.last_error = redact(f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}")
        self.limiter.record(acked, throttled)
        if acked:
            self.failing_since = None
        elif failed:
            self._failing()
        return failed, False

    def _failing(self):
        if self.failing_since is None:
            self.failing_since = time.monotonic()


def _in_order(pending, failed, deferred):
    """The entries of `pending` that are in `failed` or `deferred`, in their original order."""
    keep = {id(e) for e in failed}
    keep.update(id(e) for e in deferred)
    return [e for e in pending if id(e) in keep]


def exit_if_failing_too_long(delivery, timeout, log):
    """As the Go plugin: failing to send for SEND_FAILURE_TIMEOUT ends the process."""
    since = delivery.failing_since
    if timeout and since is not None and time.monotonic() - since > timeout:
        log.error(f"no record delivered for {time.monotonic() - since:.0f} s, over "
                  f"SEND_FAILURE_TIMEOUT ({timeout:g} s): exiting with status 1")
        time.sleep(0.5)  # lets Fluent Bit's log thread write the line
        os._exit(1)


def collect_failed_requests():
    """A request that fails inside urllib3 (reset, timeout, refused) leaves a
    reference cycle (exception, traceback, frame) that holds its whole body.
    With the collector tuned to run rarely (plugin.tune_garbage_collector),
    bodies piled up during an outage: +62 MB in 20 s at 1,000 lines/s; +18 MB
    with one collection a second; +1.5 MB collecting the young generations
    after every failed round, which costs under 5 ms (the objects loaded at
    start are frozen, a chunk's are scanned once or twice) before a backoff of
    at least 50 ms."""
    gc.collect(1)
