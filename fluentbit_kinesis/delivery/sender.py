"""Sends entries with PutRecords until each one is acknowledged.

Entries wait in per-shard lanes (batching.Lanes). Each request carries what
the shards may take now (pacing.ShardLimiter, one per stream in the process:
limiters.py), so a hot shard holds back only its own entries. A throttled
entry is paced: it goes back to the head of its lane, its shard's share is
learned from the answer, and it never counts as a failed try nor waits a
backoff. Other failures are retried after an exponential backoff with jitter
(of their shard only); when an entry's retry budget runs out, delivery reports
failure and the flush answers FLB_RETRY (max_retries -1: no budget, retry
until delivered or shutdown). Acknowledged entries are reported through
`on_acked(events, answers)`, once per request (the events the entries carry,
the service's answers to them or None), so the ledger can skip them if
Fluent Bit hands the same chunk back.

A flush's entries are kept as columns (pipeline/entry_table.py); an entry is
its index there, a request an array of indices: no Python step runs per
entry between the shaping and the request body.
"""
import gc
import os
import random
import threading
import time
from dataclasses import dataclass, field

from . import batching, limiters
from .client import THROTTLE_ERRORS, RequestError
from ..pipeline.entry_kernels import events_at
from ..pipeline.entry_table import EntryTable
from ..telemetry.redact import redact

MAX_BACKOFF = 10.0


@dataclass
class Outcome:
    delivered: bool
    entries: int = 0  # entries (Kinesis records) this send was given
    attempts: int = 0
    failed_entries: int = 0
    last_error: str = ""
    throttled: dict = field(default_factory=dict)  # shard or "request" -> count
    paced: dict = field(default_factory=dict)      # shard -> seconds spent waiting for its tokens
    shares: dict = field(default_factory=dict)     # shard -> share of its limit paced at, at the end


@dataclass
class Answered:
    """What one request's answer asks for."""
    failed: list = field(default_factory=list)     # to try again after a backoff
    throttled: list = field(default_factory=list)  # to pace
    fatal: bool = False


class Delivery:
    def __init__(self, client, settings, logger, stop_event=None, shard_map=None, on_stalled=None):
        self.client = client
        self.max_count = settings.max_records_per_request
        self.max_bytes = settings.max_request_bytes
        self.max_retries = settings.max_retries
        self.backoff_increment = settings.backoff_increment
        self.logger = logger
        self.stop_event = stop_event or threading.Event()
        self.shard_map = shard_map  # each entry's shard (shards.ShardMap); None: one lane, "unknown"
        self.limiter = limiters.for_stream(settings)
        self.on_stalled = on_stalled or (lambda: None)  # called after each request with failures
        self.failing_since = None  # monotonic time of the first failure since the last success

    def backoff(self, attempt):
        delay = min(MAX_BACKOFF, self.backoff_increment * (2 ** (attempt - 1)))
        return delay * random.uniform(0.5, 1.0)

    def lanes(self, table):
        """The table's entries in per-shard lanes, each entry's shard predicted once for the send."""
        found = self.shard_map.entry_shards(table) if self.shard_map is not None else None
        return batching.Lanes(table) if found is None else batching.Lanes(table, *found)

    def send(self, entries, on_acked, ticket=None):
        """Delivers every entry (an EntryTable, or a list of entry tuples:
        EntryTable.from_entries); returns an Outcome. Each request carries what
        the shards may take now; entries held back wait for their shard's
        tokens (or a backoff) without using up a try, while other shards go on.
        Once an entry has used up its tries, what can still go now goes, then
        the flush gives up (FLB_RETRY: the ledger keeps what was delivered).
        `ticket`: the chunk's place in each shard's order (shard_order), kept
        by the caller across flushes of the chunk; without one, this send
        takes one after every chunk already in delivery."""
        table = entries if isinstance(entries, EntryTable) else EntryTable.from_entries(entries)
        lanes = self.lanes(table)
        outcome = Outcome(delivered=False, entries=table.count)
        tries = {}  # entry -> failed tries: the budget is per entry
        order = self.limiter.order
        own_ticket = ticket is None
        if own_ticket:
            ticket = order.reserve()
        declared = lanes.shards
        order.declare(ticket, declared)
        try:
            while len(lanes):
                blocked = order.blocked(ticket)
                group, counts = lanes.take(self.limiter, time.monotonic(), self.max_count, self.max_bytes, blocked)
                if group:
                    fine = self._request(table, group, counts, lanes, tries, on_acked, outcome)
                    if len(lanes.lanes) < len(declared) or not fine:  # a shard is done: later chunks may go there
                        declared = lanes.pending_shards()
                        order.declare(ticket, declared)
                    if fine:
                        continue
                    break  # fatal: retrying cannot help now (no stream, no access)
                if 0 <= self.max_retries < outcome.attempts:
                    break
                pause, paced = lanes.pause(self.limiter, time.monotonic(), blocked)
                for shard, seconds in paced.items():
                    outcome.paced[shard] = outcome.paced.get(shard, 0.0) + seconds
                if self.stop_event.wait(pause):
                    break  # shutting down: Fluent Bit keeps the chunk
            outcome.failed_entries = len(lanes)
            outcome.delivered = not outcome.failed_entries
            return outcome
        finally:
            if own_ticket:
                order.leave(ticket)
            else:  # the chunk keeps its place for what is left
                order.declare(ticket, lanes.pending_shards())
            outcome.shares = self.limiter.shares(lanes.shards)
            line = self.limiter.report()
            if line:
                self.logger.info(line)

    def _request(self, table, group, counts, lanes, tries, on_acked, outcome):
        """Sends one request (`counts`: its RequestCounts, from Lanes.take); puts
        back what must go again. False: a fatal error."""
        answered = Answered()
        self._send_group(table, group, counts, lanes.shard_of, on_acked, outcome, answered)
        lanes.put_back(answered.throttled)
        if not answered.failed:
            return True
        worst = 0
        for entry in answered.failed:
            count = tries[entry] = tries.get(entry, 0) + 1
            worst = max(worst, count)
        outcome.attempts = max(outcome.attempts, worst)
        self.on_stalled()
        if 0 <= self.max_retries < worst:
            lanes.back_off(answered.failed, float("inf"))  # no more tries in this flush
        else:
            lanes.back_off(answered.failed, time.monotonic() + self.backoff(worst))
        return not answered.fatal

    def _send_group(self, table, group, counts, shard_of, on_acked, outcome, answered):
        """Sends one request; sorts its entries into `answered`."""
        try:
            answer = self.client.put_records(table, group)
        except RequestError as exc:
            outcome.last_error = str(exc)
            self.logger.debug(f"PutRecords of {len(group)} entries failed: {exc}")
            if exc.throttled:  # the whole call: paced as its entries would be
                outcome.throttled["request"] = outcome.throttled.get("request", 0) + len(group)
                answered.throttled.extend(group)
                self.limiter.answered(counts.all_throttled())
                return
            self._failing()
            answered.failed.extend(group)
            answered.fatal = answered.fatal or not exc.retryable
            self.limiter.refund(counts)  # it never reached a shard
            return
        acked, acked_answers, failed, failed_answers = answer.outcomes(group)
        if len(acked):
            on_acked(events_at(table, acked), acked_answers)
            self.failing_since = None
        for entry, result in zip(failed, failed_answers):
            shard = shard_of(entry)  # an entry's shard is predicted once per send
            throttled = result["ErrorCode"] in THROTTLE_ERRORS
            counts.less(shard, table.sizes[entry], throttled)  # what the shard took: less this one
            if throttled:
                outcome.throttled[shard] = outcome.throttled.get(shard, 0) + 1
                answered.throttled.append(entry)
            else:
                answered.failed.append(entry)
            outcome.last_error = redact(f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}")
        self.limiter.answered(counts)
        if answered.failed:
            self._failing()

    def _failing(self):
        if self.failing_since is None:
            self.failing_since = time.monotonic()


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
