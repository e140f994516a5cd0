"""Entry points called by the C shim, and one OutputInstance per [OUTPUT].

The whole data path of a flush, top to bottom:
    decode the chunk -> skip what a previous try already did -> shape records
    -> (aggregate) -> dead-letter what cannot be sent -> deliver the rest
"""
import dataclasses
import gc
import os
import threading
import time

from . import config, metrics
from .aggregation import AggregateEvents, Aggregator, SimpleAggregator, plain
from .aws import KinesisClient
from .deadletter import DeadLetter, DeadLetters
from .delivery import Delivery
from .dryrun import DryRunClient
from .handoff import HandOff, Spool
from .ledger import Ledger, chunk_key
from .log import INFO, Logger, RateLimitedWarning
from .redact import redact
from .shaping import Shaper
from .shards import ShardMap

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2
# in a chunk's ledger entry: its dead letters are written (never twice)
DEAD_LETTERS_WRITTEN = -1
INVALID_UTF8_DONE = {"replace": "replaced with U+FFFD", "base64": "sent as base64 text",
                     "dead_letter": "written to the dead letters"}

_instances = {}
_instances_lock = threading.Lock()


class OutputInstance:
    def __init__(self, settings, logger, name="kinesis", predict_shard=None):
        self.settings = settings
        self.log = logger
        # operations: dry_run swaps the client; metrics count what it does
        self.metrics = metrics.InstanceMetrics(name, settings.stream or settings.stream_arn)
        client = DryRunClient(settings, logger) if settings.dry_run else KinesisClient(settings)
        # one shard map for aggregation, per-shard pacing and per-shard metrics;
        # it reads ListShards only when one of them asks
        self.shard_map = ShardMap(client.list_shards, logger)
        self.client = metrics.CountingClient(client, self.metrics, self.shard_map.shard_of_entry)
        self.shaper, self.packer = self._stages(settings)
        self.stop = threading.Event()
        self.delivery = Delivery(self.client, settings, logger, self.stop,
                                 predict_shard=predict_shard or self.shard_map.shard_of_entry,
                                 on_stalled=self._stalled)
        self.dead_letters = DeadLetters(settings.dead_letter_file, settings.dead_letter_max_bytes, logger)
        self.ledger = Ledger(settings.ledger_path, f"{name}-{settings.stream or settings.stream_arn}", logger=logger)
        self.random_key_warning = RateLimitedWarning(
            logger, f"partition_key '{'->'.join(settings.partition_key or [])}' missing or not a string; "
                    "used a random partition key")
        self.invalid_utf8_warning = RateLimitedWarning(
            logger, f"records with invalid UTF-8 or bin values: {INVALID_UTF8_DONE[settings.invalid_utf8]} "
                    f"(invalid_utf8 {settings.invalid_utf8})")
        self.retry_warning = RateLimitedWarning(
            logger, "records not delivered within a flush; Fluent Bit will retry their chunks", interval=10.0)
        self.name = name
        self.handoff = None  # flushes on Fluent Bit's engine thread go through it (first take)
        self._handoff_lock = threading.Lock()
        self.records_sent = 0
        self.aggregates_sent = 0
        self.user_records_aggregated = 0
        self._count_lock = threading.Lock()

    def _stages(self, settings):
        """The shaper, and what turns its records into Kinesis entries."""
        if settings.aggregation:
            return Shaper(settings), Aggregator(settings, self.shard_map, self.log, self.metrics.add_unaggregated)
        if settings.simple_aggregation:  # compresses whole packs, not each record
            return Shaper(dataclasses.replace(settings, compression="none")), SimpleAggregator(settings, self.log)
        return Shaper(settings), None

    def start(self):
        """Checks the stream once; a failure is one clear line, not a failed start,
        so the plugin keeps retrying when the stream or credentials appear later."""
        self.reporting = metrics.Reporting(self.metrics, self.settings, self.log, threading.Event())
        if self.settings.ledger_path and _has_files(self._spool_directory()):
            self._start_handoff(warn=False)  # chunks a killed run acknowledged: deliver them now
        if self.settings.dry_run:
            self.log.info("dry_run: records are prepared but not sent; AWS is not contacted")
            return
        try:
            summary = self.client.describe_stream()
            self.log.info(f"stream {summary.get('StreamName')} is {summary.get('StreamStatus')}, "
                          f"{summary.get('OpenShardCount')} open shards")
        except Exception as exc:
            self.log.error(f"cannot describe stream {self.settings.stream or self.settings.stream_arn}: "
                           f"{_short_error(exc)}; records will be retried until it is reachable")

    def flush(self, data, tag):
        # a retried (or, with ledger_path, replayed) chunk: only what earlier tries did not finish
        ledger = self.ledger
        chunk_id = chunk_key(tag, data) if ledger.persistent or len(ledger) else None
        done = ledger.done(chunk_id)

        chunk, shaped = self.shaper.shape_chunk(data)
        self.random_key_warning.add(shaped.random_keys)
        if shaped.invalid_utf8:
            self.metrics.add_invalid_utf8(shaped.invalid_utf8)
            self.invalid_utf8_warning.add(shaped.invalid_utf8)
        finished = set(done)  # event indices acknowledged or dead-lettered
        finished.update(rejected[0] for rejected in shaped.rejected)

        if DEAD_LETTERS_WRITTEN not in done:  # an earlier try of this chunk wrote them
            records = sum(run.count for run in chunk.rejected) + bool(chunk.error) + len(shaped.rejected)
            try:
                self.dead_letters.write(tag, self._dead_letters(chunk, shaped), records)
            except OSError:  # logged; nothing is sent before its dead letters are kept
                return FLB_RETRY
            self.metrics.add_dead_letters(records)
            if records:
                ledger.record(chunk_id, [index for index, *_ in shaped.rejected] + [DEAD_LETTERS_WRITTEN])
        finished.add(DEAD_LETTERS_WRITTEN)

        # the usual first try has nothing done: no pass over every record
        todo = [entry for entry in shaped.entries if entry[2] not in done] if done else shaped.entries
        ledger.flushing(chunk_id, finished)
        try:
            outcome = self._deliver(todo, finished, chunk_id)
        finally:
            ledger.done_flushing(chunk_id)
        self.metrics.flush_done(outcome)
        if outcome.delivered:
            if chunk_id:
                ledger.forget(chunk_id)
            return FLB_OK
        ledger.remember(chunk_id or chunk_key(tag, data), finished)
        self.retry_warning.add(outcome.failed_entries, f"last: {outcome.entries - outcome.failed_entries} of "
                               f"{outcome.entries} Kinesis records delivered after {outcome.attempts} tries, "
                               f"{outcome.last_error}")
        self._check_send_failure_timeout()
        return FLB_RETRY

    def take(self, data, tag):
        """A flush on Fluent Bit's engine thread (the output's `workers` is 0):
        the chunk goes to the hand-off queue, which delivers it in the
        background; the engine never waits on Kinesis (see handoff.py)."""
        if self.handoff is None:
            self._start_handoff(warn=True)
        return self.handoff.take(data, tag)

    def _start_handoff(self, warn):
        with self._handoff_lock:
            if self.handoff is not None:
                return
            if warn:
                kept = ("kept in the hand-off spool until delivered (ledger_path)" if self.settings.ledger_path
                        else "held in memory only: a kill loses them; set ledger_path to keep them on disk")
                self.log.warn("flushes run on Fluent Bit's engine thread (this output's 'workers' is 0): "
                              "chunks are delivered from a background queue and acknowledged to Fluent Bit "
                              "when delivered or after 0.2 s, whichever is first, so the engine never waits "
                              f"on Kinesis; queued chunks are {kept}; set 'workers 1' on this output so "
                              "chunks are acknowledged only once delivered")
            spool = Spool(self._spool_directory()) if self.settings.ledger_path else None
            self.handoff = HandOff(self.flush, self.give_up, self.log, self.stop,
                                   self.settings.handoff_max_bytes, self.name, spool)

    def _spool_directory(self):
        return self.ledger.file[:-len(".ledger")] + ".spool"

    def give_up(self, data, tag, reason):
        """Dead-letters what is left of a chunk that will not be delivered:
        the records no earlier try delivered, as their payloads."""
        done = self.ledger.done(chunk_key(tag, data))
        chunk, shaped = self.shaper.shape_chunk(data)  # never raises
        dead = [] if DEAD_LETTERS_WRITTEN in done else list(self._dead_letters(chunk, shaped))
        dead.extend(DeadLetter(reason, key, payload) for payload, key, index in shaped.entries if index not in done)
        records = sum(item.count for item in dead)
        self.dead_letters.write(tag, dead, records)
        self.metrics.add_dead_letters(records)

    def _deliver(self, shaped, finished, chunk_id):
        """Packs and sends shaped records; adds every event that Kinesis
        acknowledged to `finished` (and with ledger_path, to the ledger file:
        one line per request). An aggregate landing on another shard than
        predicted is still whole for a KCL consumer (aggregation.py), but the
        shard map is stale: it is read again on the next flush."""
        acked_records = acked_aggregates = aggregated = misrouted = 0

        record = self.ledger.record if self.ledger.persistent else None

        def on_acked(entries, answers):
            nonlocal acked_records, acked_aggregates, aggregated, misrouted
            if self.packer is None:  # one record per entry
                acked = [entry[3] for entry in entries]
            else:
                acked = []
                for entry, answer in zip(entries, answers):
                    events = entry[3]
                    if type(events) is int:
                        acked.append(events)
                        continue
                    acked.extend(events)
                    if type(events) is AggregateEvents:
                        acked_aggregates += 1
                        aggregated += len(events)
                        misrouted += answer.get("ShardId") != events.shard_id
            finished.update(acked)
            acked_records += len(acked)
            if record is not None:
                record(chunk_id, acked)

        outcome = self.delivery.send(self.packer.pack(shaped) if self.packer else plain(shaped), on_acked)
        if misrouted:
            self.shard_map.expire()
            self.log.info(f"{misrouted} aggregates landed on another shard than predicted (stream "
                          "resharded): still whole for KCL consumers; shard map read again next flush")

        with self._count_lock:
            self.records_sent += acked_records
            self.aggregates_sent += acked_aggregates
            self.user_records_aggregated += aggregated
        if acked_aggregates:
            self.log.debug(f"aggregation: {aggregated} records in {acked_aggregates} aggregates this flush; "
                           f"{self.user_records_aggregated / max(1, self.aggregates_sent):.1f} records per "
                           f"aggregate overall")
        return outcome

    @staticmethod
    def _dead_letters(chunk, shaped):
        """DeadLetter items for all that cannot be sent, one at a time."""
        for run in chunk.rejected:
            yield DeadLetter(run.reason, original=("raw", run.data), count=run.count)
        if chunk.error:
            yield DeadLetter(chunk.error, original=("raw", chunk.undecoded))
        originals = shaped.originals
        for index, reason, key, payload in shaped.rejected:
            # a reject without payload nor original (none known) still leaves its reason
            yield DeadLetter(reason, key, payload, originals.get(index))

    def _stalled(self):
        """After each failed round of a flush."""
        self._check_send_failure_timeout()
        _collect_failed_requests()

    def _check_send_failure_timeout(self):
        """As the Go plugin: failing to send for SEND_FAILURE_TIMEOUT ends the process."""
        timeout = self.settings.send_failure_timeout
        since = self.delivery.failing_since
        if timeout and since is not None and time.monotonic() - since > timeout:
            self.log.error(f"no record delivered for {time.monotonic() - since:.0f} s, over "
                           f"SEND_FAILURE_TIMEOUT ({timeout:g} s): exiting with status 1")
            time.sleep(0.5)  # lets Fluent Bit's log thread write the line
            os._exit(1)

    def close(self):
        if self.handoff is not None:
            left = self.handoff.close()
            if left:
                self.log.error(f"{left} chunks not delivered before exit; their records went to the dead letters")
        self.stop.set()
        self.reporting.close()
        self.client.pool.clear()
        self.ledger.close()


def _has_files(directory):
    try:
        with os.scandir(directory) as entries:
            return any(True for _ in entries)
    except OSError:
        return False


def _collect_failed_requests():
    """A request that fails inside urllib3 (reset, timeout, refused) leaves a
    reference cycle (exception, traceback, frame) that holds its whole body.
    With the collector tuned to run rarely (_tune_garbage_collector), bodies
    piled up during an outage: +62 MB in 20 s at 1,000 lines/s; +18 MB with
    one collection a second; +1.5 MB collecting the young generations after
    every failed round, which costs under 5 ms (the objects loaded at start
    are frozen, a chunk's are scanned once or twice) before a backoff of at
    least 50 ms."""
    gc.collect(1)


def _short_error(exc):
    return redact(exc, limit=300)


def _make_logger(ffi, lib, handle, settings_level, name):
    def emit(level, text):
        lib.fbk_log(handle, level, text.encode("utf-8", "replace"))

    checks = [lib.fbk_log_check(handle, lvl) for lvl in range(1, 6)]
    if settings_level is not None:
        level = settings_level
    elif -1 in checks:  # Fluent Bit 1.9 cannot tell an instance's level: its default
        level = INFO
    else:
        level = max((lvl for lvl, enabled in zip(range(1, 6), checks) if enabled), default=0)
    return Logger(emit, name, level)


def _fluent_bit_metrics(ffi, lib, handle):
    """metrics.FluentBitMetrics on the instance's cmetrics context (csrc/engine.c)."""
    shards = {}  # shard id -> its C string, kept alive

    def create(name, text, gauge, with_shard):
        return lib.fbk_cmt_create(handle, name.encode(), text.encode(), int(gauge), int(with_shard))

    def set_value(metric, gauge, value, shard):
        label = ffi.NULL
        if shard is not None:
            label = shards.get(shard)
            if label is None:
                label = shards[shard] = ffi.new("char[]", str(shard).encode("utf-8", "replace"))
        lib.fbk_cmt_set(handle, metric, int(gauge), float(value), label)

    return metrics.FluentBitMetrics(create, set_value)


def _tune_garbage_collector():
    """A 2 MB chunk decodes into ~100,000 objects. With the default threshold
    (700) the collector runs over a hundred times per chunk and walks all of
    boto3's objects each time: that was half of the CPU per record. Records
    hold no reference cycles, so collect rarely, and never scan what was
    loaded at start-up."""
    gc.set_threshold(100_000, 50, 100)
    gc.freeze()


def bind(ffi, lib):
    """Implements the shim's fbk_py_* functions; called once by the embedded init code."""

    @ffi.def_extern(error=FLB_ERROR)
    def fbk_py_init(handle, instance_id):
        def get_property(name):
            value = lib.fbk_get_property(handle, name.encode())
            return None if value == ffi.NULL else ffi.string(value).decode("utf-8", "replace")

        fluent_bit_name = lib.fbk_instance_name(handle)  # alias or kinesis.N, as Fluent Bit names it
        name = ffi.string(fluent_bit_name).decode("utf-8", "replace") if fluent_bit_name != ffi.NULL \
            else f"kinesis.{instance_id}"
        env_level = os.environ.get("FLB_LOG_LEVEL", "").strip().lower()
        log = _make_logger(ffi, lib, handle, config.LOG_LEVELS.get(env_level), name)
        if lib.fbk_api_generation(handle) < 2 and not env_level:
            log.info("this Fluent Bit (before 2.0) cannot tell the plugin its log_level: "
                     "it logs at info; FLB_LOG_LEVEL=debug (or error, warn) changes that")
        try:
            settings = config.load(get_property)
        except config.ConfigError as exc:
            log.error(f"invalid configuration: {exc}")
            return FLB_ERROR
        try:
            instance = OutputInstance(settings, log, name)
        except Exception as exc:
            log.error(f"cannot start: {_short_error(exc)}")
            return FLB_ERROR
        if lib.fbk_cmt_available(handle):
            instance.metrics.fluent_bit = _fluent_bit_metrics(ffi, lib, handle)
            instance.metrics.publish()  # the series exist from the start, at 0
            log.info(f"metrics: in Fluent Bit's metrics as fluentbit_kinesis_*{{name=\"{name}\"}}")
        instance.start()
        _tune_garbage_collector()
        with _instances_lock:
            _instances[instance_id] = instance
        log.info(f"ready: stream={settings.stream or settings.stream_arn} region={settings.region}")
        return FLB_OK

    @ffi.def_extern(error=FLB_RETRY)
    def fbk_py_flush(instance_id, data, size, tag):
        instance = _instances.get(instance_id)
        if instance is None:
            return FLB_ERROR
        try:
            return instance.flush(ffi.buffer(data, size), ffi.string(tag).decode("utf-8", "replace"))
        except Exception as exc:  # never lose the chunk over a bug: Fluent Bit retries it
            instance.log.error(f"flush failed: {exc.__class__.__name__}: {_short_error(exc)}")
            return FLB_RETRY

    @ffi.def_extern(error=FLB_RETRY)
    def fbk_py_take(instance_id, data, size, tag):
        instance = _instances.get(instance_id)
        if instance is None:
            return FLB_ERROR
        return instance.take(ffi.buffer(data, size), ffi.string(tag).decode("utf-8", "replace"))

    @ffi.def_extern(error=FLB_ERROR)
    def fbk_py_exit(instance_id):
        with _instances_lock:
            instance = _instances.pop(instance_id, None)
        if instance is not None:
            instance.close()
            aggregated = (f" ({instance.user_records_aggregated} in {instance.aggregates_sent} aggregates)"
                          if instance.aggregates_sent else "")
            done = "processed (dry run: nothing sent)" if instance.settings.dry_run else "sent"
            instance.log.info(f"stopped after {instance.records_sent} records {done}{aggregated}")
        return FLB_OK
