"""Entry points called by the C shim, and one OutputInstance per [OUTPUT].

A flush is the pipeline's few steps, top to bottom:
    what earlier tries of the chunk did (ledger) -> shape the chunk (pipeline)
    -> keep its dead letters -> pack (aggregation) -> deliver the rest
"""
import dataclasses
import gc
import os
import threading

from . import config
from .delivery.acknowledgements import Acknowledgements, SentTotals
from .delivery.chunk_progress import ChunkProgress
from .delivery.client import KinesisClient
from .delivery.counted_client import CountedClient
from .delivery.dead_letters import DeadLetters
from .delivery.dry_run import DryRunClient
from .delivery import state_directory
from .delivery.handoff import HandOff, engine_thread_warning
from .delivery.rounds import flush_until_delivered
from .delivery.sender import Delivery, collect_failed_requests, exit_if_failing_too_long
from .delivery.shards import ShardMap
from .delivery.spool import Spool, SpooledBytes
from .pipeline.entry_table import EntryTable
from .pipeline.rejects import DeadLetter
from .pipeline.shaping import Shaper
from .telemetry.fluent_bit import fluent_bit_metrics, make_logger
from .telemetry.log import RateLimitedWarning
from .telemetry.metrics import InstanceMetrics, Reporting
from .telemetry.redact import redact

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2
INVALID_UTF8_DONE = {"replace": "replaced with U+FFFD", "base64": "sent as base64 text",
                     "dead_letter": "written to the dead letters"}

_instances = {}
_instances_lock = threading.Lock()


class OutputInstance:
    def __init__(self, settings, logger, name="kinesis"):
        self.settings = settings
        self.log = logger
        self.name = name
        stream = settings.stream or settings.stream_arn
        self.metrics = InstanceMetrics(name, stream)
        client = DryRunClient(settings, logger) if settings.dry_run else KinesisClient(settings)
        # one shard map for aggregation, per-shard pacing and per-shard metrics;
        # it reads ListShards only when one of them asks
        self.shard_map = ShardMap(client.list_shards, logger)
        self.client = CountedClient(client, self.metrics, self.shard_map.shard_of_entry)
        self.shaper, self.packer = self._stages(settings)
        self.stop = threading.Event()
        self.delivery = Delivery(self.client, settings, logger, self.stop, self.shard_map, self._stalled)
        self.dead_letters = DeadLetters(settings.dead_letter_file, settings.dead_letter_max_bytes, logger)
        self.ledger, self.state_directory = state_directory.open_ledger(settings.ledger_path, f"{name}-{stream}",
                                                                         logger)
        self.sent = SentTotals()
        self.handoff = None  # flushes on Fluent Bit's engine thread go through it (first take)
        self._handoff_lock = threading.Lock()
        self.random_key_warning = RateLimitedWarning(
            logger, f"partition_key '{'->'.join(settings.partition_key or [])}' missing or not a string; "
                    "used a random partition key")
        self.invalid_utf8_warning = RateLimitedWarning(
            logger, f"records with invalid UTF-8 or bin values: {INVALID_UTF8_DONE[settings.invalid_utf8]} "
                    f"(invalid_utf8 {settings.invalid_utf8})")
        self.not_normalized_warning = RateLimitedWarning(
            logger, f"records that could not be normalized to field_format {settings.field_format}: "
                    "sent as they came")
        self.retry_warning = RateLimitedWarning(
            logger, "records not delivered within a flush; Fluent Bit will retry their chunks", interval=10.0)

    def _stages(self, settings):
        """The shaper, and what turns its records into Kinesis entries (KPL's code imported only then)."""
        if settings.aggregation or settings.simple_aggregation:
            from .pipeline.aggregation import Aggregator, SimpleAggregator
        if settings.aggregation:
            return Shaper(settings, tables=True), Aggregator(settings, self.shard_map, self.log,
                                                             self.metrics.add_unaggregated)
        if settings.simple_aggregation:  # compresses whole packs, not each record
            return Shaper(dataclasses.replace(settings, compression="none")), SimpleAggregator(settings, self.log)
        return Shaper(settings, tables=True), None

    def start(self):
        """Checks the stream once: a failure is one line, not a failed start (retried until it is there)."""
        self.reporting = Reporting(self.metrics, self.settings, self.log, threading.Event())
        if self.state_directory is not None and _has_files(self._spool_directory()):
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
                           f"{redact(exc, limit=300)}; records will be retried until it is reachable")

    def flush(self, data, tag, ticket=None):
        progress = ChunkProgress(self.ledger, tag, data)
        shaped = self.shaper.shape_chunk(data)
        self._count(shaped)
        if not self._keep_dead_letters(tag, shaped, progress):
            return FLB_RETRY  # logged; nothing is sent before its dead letters are kept
        acks = Acknowledgements(progress, packed=self.packer is not None)
        entries = (self.packer.pack if self.packer else EntryTable.from_shaped)(progress.todo(shaped.entries))
        shaped = None  # its entries live on in `entries` only, not twice through the sending
        if isinstance(data, SpooledBytes):  # nor its chunk: a later round reads the spool again
            progress.let_go()
        with progress.sending():
            outcome = self.delivery.send(entries, acks, ticket)
        self._sent(acks)
        self.metrics.flush_done(outcome)
        if outcome.delivered:
            progress.delivered()
            return FLB_OK
        progress.retry_later()
        self.retry_warning.add(outcome.failed_entries, f"last: {outcome.entries - outcome.failed_entries} of "
                               f"{outcome.entries} Kinesis records delivered after {outcome.attempts} tries, "
                               f"{outcome.last_error}")
        exit_if_failing_too_long(self.delivery, self.settings.send_failure_timeout, self.log)
        return FLB_RETRY

    def _count(self, shaped):
        self.random_key_warning.add(shaped.random_keys)
        if shaped.invalid_utf8:
            self.metrics.add_invalid_utf8(shaped.invalid_utf8)
            self.invalid_utf8_warning.add(shaped.invalid_utf8)
        if shaped.not_normalized:
            self.metrics.add_not_normalized(shaped.not_normalized)
            self.not_normalized_warning.add(shaped.not_normalized)

    def _keep_dead_letters(self, tag, shaped, progress):
        """Writes the chunk's dead letters unless an earlier try did; False when they cannot be written."""
        records = 0
        if not progress.dead_letters_written:
            records = shaped.dead_letter_count()
            try:
                self.dead_letters.write(tag, shaped.dead_letters(), records)
            except OSError:
                return False
            self.metrics.add_dead_letters(records)
        progress.dead_lettered(shaped.rejected_indices(), records)
        return True

    def _sent(self, acks):
        self.sent.add(acks)
        if acks.misrouted:
            self.shard_map.expire()
            self.log.info(f"{acks.misrouted} aggregates landed on another shard than predicted (stream "
                          "resharded): still whole for KCL consumers; shard map read again next flush")
        if acks.aggregates:
            self.log.debug(f"aggregation: {acks.aggregated} records in {acks.aggregates} aggregates this flush; "
                           f"{self.sent.records_per_aggregate():.1f} records per aggregate overall")

    def take(self, data, tag):
        """A flush on Fluent Bit's engine thread (the output's `workers` is 0):
        the chunk goes to the hand-off queue, which delivers it in the
        background (delivery/handoff.py); without durable state the flush
        waits for the delivery, as nothing else keeps the chunk."""
        if self.handoff is None:
            self._start_handoff(warn=True)
        if self.handoff is False:
            delivered = flush_until_delivered(self.flush, data, tag, self.stop, self.log)
            return FLB_OK if delivered else FLB_RETRY
        return self.handoff.take(data, tag)

    def _start_handoff(self, warn):
        with self._handoff_lock:
            if self.handoff is not None:
                return
            if warn:  # a warning only where it costs something: the engine waits
                (self.log.info if self.state_directory else self.log.warn)(
                    engine_thread_warning(self.state_directory is not None))
            if self.state_directory is None:
                self.handoff = False  # flushes wait for delivery
                return
            self.handoff = HandOff(self.flush, self.give_up, self.log, self.stop, self.settings.handoff_max_bytes,
                                   Spool(self._spool_directory()), self.delivery.limiter.order,
                                   lambda: self.delivery.failing_since is not None, self.name)

    def _spool_directory(self):
        return self.ledger.file[:-len(".ledger")] + ".spool"

    def give_up(self, data, tag, reason):
        """Dead-letters the records of a chunk no try will deliver (none before did), as their payloads."""
        progress = ChunkProgress(self.ledger, tag, data)
        shaped = self.shaper.shape_chunk(data)  # never raises
        dead = [] if progress.dead_letters_written else list(shaped.dead_letters())
        dead.extend(DeadLetter(reason, entry[1], entry[0]) for entry in progress.todo(shaped.entries))
        records = sum(item.count for item in dead)
        self.dead_letters.write(tag, dead, records)
        self.metrics.add_dead_letters(records)

    def _stalled(self):
        """After each failed round of a flush."""
        exit_if_failing_too_long(self.delivery, self.settings.send_failure_timeout, self.log)
        collect_failed_requests()

    def close(self):
        if self.handoff:
            self.handoff.close()  # what it cannot deliver in time stays in its spool
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


def tune_garbage_collector():
    """A 2 MB chunk decodes into ~100,000 objects. With the default threshold
    (700) the collector runs over a hundred times per chunk and walks all of
    boto3's objects each time: that was half of the CPU per record. Records
    hold no reference cycles, so collect rarely, and never scan what was
    loaded at start-up."""
    gc.set_threshold(100_000, 50, 100)
    gc.freeze()


def _init(ffi, lib, handle, instance_id):
    """Init of one [OUTPUT]: its settings, logger and metrics from Fluent Bit; FLB_OK or FLB_ERROR."""
    def get_property(name):
        value = lib.fbk_get_property(handle, name.encode())
        return None if value == ffi.NULL else ffi.string(value).decode("utf-8", "replace")

    fluent_bit_name = lib.fbk_instance_name(handle)  # alias or kinesis.N, as Fluent Bit names it
    name = ffi.string(fluent_bit_name).decode("utf-8", "replace") if fluent_bit_name != ffi.NULL \
        else f"kinesis.{instance_id}"
    env_level = os.environ.get("FLB_LOG_LEVEL", "").strip().lower()
    log = make_logger(lib, handle, config.LOG_LEVELS.get(env_level), name)
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
        log.error(f"cannot start: {redact(exc, limit=300)}")
        return FLB_ERROR
    if lib.fbk_cmt_available(handle):
        instance.metrics.fluent_bit = fluent_bit_metrics(ffi, lib, handle)
        instance.metrics.publish()  # the series exist from the start, at 0
        log.info(f"metrics: in Fluent Bit's metrics as fluentbit_kinesis_*{{name=\"{name}\"}}")
    instance.start()
    tune_garbage_collector()
    with _instances_lock:
        _instances[instance_id] = instance
    log.info(f"ready: stream={settings.stream or settings.stream_arn} region={settings.region}")
    return FLB_OK


def bind(ffi, lib):
    """Implements the shim's fbk_py_* functions; called once by the embedded init code."""

    @ffi.def_extern(error=FLB_ERROR)
    def fbk_py_init(handle, instance_id):
        return _init(ffi, lib, handle, instance_id)

    @ffi.def_extern(error=FLB_RETRY)
    def fbk_py_flush(instance_id, data, size, tag):
        instance = _instances.get(instance_id)
        if instance is None:
            return FLB_ERROR
        try:
            return instance.flush(ffi.buffer(data, size), ffi.string(tag).decode("utf-8", "replace"))
        except Exception as exc:  # never lose the chunk over a bug: Fluent Bit retries it
            instance.log.error(f"flush failed: {exc.__class__.__name__}: {redact(exc, limit=300)}")
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
            sent = instance.sent
            aggregated = f" ({sent.aggregated} in {sent.aggregates} aggregates)" if sent.aggregates else ""
            done = "processed (dry run: nothing sent)" if instance.settings.dry_run else "sent"
            instance.log.info(f"stopped after {sent.records} records {done}{aggregated}")
        return FLB_OK
