"""Sends entries with PutRecords until each one is acknowledged.

Only failed entries are resent, in their original order, after an
exponential backoff with jitter; when the retry budget runs out, delivery
reports failure and the flush answers FLB_RETRY. Every acknowledged entry is
reported through `on_acked`, so the ledger can skip it if Fluent Bit hands the
same chunk back.
"""
import random
import threading
import time
from dataclasses import dataclass, field

from . import batching
from .aws import THROTTLE_ERRORS, RequestError

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
    def __init__(self, client, settings, logger, stop_event=None):
        self.client = client
        self.max_count = settings.max_records_per_request
        self.max_bytes = settings.max_request_bytes
        self.max_retries = settings.max_retries
        self.backoff_increment = settings.backoff_increment
        self.logger = logger
        self.stop_event = stop_event or threading.Event()
        self.last_progress = time.monotonic()

    def backoff(self, attempt):
        delay = min(MAX_BACKOFF, self.backoff_increment * (2 ** (attempt - 1)))
        return delay * random.uniform(0.5, 1.0)

    def send(self, entries, on_acked):
        """Delivers every entry; returns an Outcome."""
        pending = list(entries)
        outcome = Outcome(delivered=False, entries=len(pending))
        while pending:
            failed = []
            groups = batching.requests(pending, self.max_count, self.max_bytes)
            for group in groups:
                failed_here, fatal = self._send_group(group, on_acked, outcome)
                failed.extend(failed_here)
                if fatal:  # retrying cannot help now (no stream, no access): give up this flush
                    for rest in groups:
                        failed.extend(rest)
                    outcome.failed_entries = len(failed)
                    return outcome
            if not failed:
                break
            outcome.failed_entries = len(failed)
            outcome.attempts += 1
            if 0 <= self.max_retries < outcome.attempts:
                return outcome
            if self.stop_event.wait(self.backoff(outcome.attempts)):
                return outcome  # shutting down: Fluent Bit keeps the chunk
            pending = failed
        outcome.delivered = True
        outcome.failed_entries = 0
        return outcome

    def _send_group(self, group, on_acked, outcome):
        """Sends one request; returns (entries that failed, whether it was fatal)."""
        try:
            results = self.client.put_records(group)
        except RequestError as exc:
            if exc.throttled:
                outcome.throttled["request"] = outcome.throttled.get("request", 0) + len(group)
            outcome.last_error = str(exc)
            self.logger.debug(f"PutRecords of {len(group)} entries failed: {exc}")
            return group, not exc.retryable
        failed = []
        for entry, result in zip(group, results):
            if result.error_code is None:
                on_acked(entry, result.shard_id)
            else:
                failed.append(entry)
                if result.error_code in THROTTLE_ERRORS:
                    shard = result.shard_id or "unknown"
                    outcome.throttled[shard] = outcome.throttled.get(shard, 0) + 1
                outcome.last_error = f"{result.error_code}: {result.message}"
        if len(failed) < len(group):
            self.last_progress = time.monotonic()
        return failed, False
