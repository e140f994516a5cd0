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
from .deadletter import DeadLetters
from .delivery import Delivery
from .dryrun import DryRunClient
from .ledger import Ledger, chunk_key
from .log import INFO, Logger, RateLimitedWarning
from .shaping import Shaper
from .shards import ShardMap

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2
# in a chunk's ledger entry: its dead letters are written (never twice)
DEAD_LETTERS_WRITTEN = -1

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
                                 on_stalled=self._check_send_failure_timeout)
        self.dead_letters = DeadLetters(settings.dead_letter_file, settings.dead_letter_max_bytes, logger)
        self.ledger = Ledger()
        self.random_key_warning = RateLimitedWarning(
            logger, f"partition_key '{'->'.join(settings.partition_key or [])}' missing or not a string; "
                    "used a random partition key")
        self.retry_warning = RateLimitedWarning(
            logger, "records not delivered within a flush; Fluent Bit will retry their chunks", interval=10.0)
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
        # a retried chunk: only what the earlier tries did not finish
        chunk_id = chunk_key(tag, data) if len(self.ledger) else None
        done = self.ledger.done(chunk_id) if chunk_id else frozenset()

        chunk, shaped = self.shaper.shape_chunk(data)
        self.random_key_warning.add(shaped.random_keys)
        finished = set(done)  # event indices acknowledged or dead-lettered
        finished.update(rejected[0] for rejected in shaped.rejected)

        if DEAD_LETTERS_WRITTEN not in done:  # an earlier try of this chunk wrote them
            dead = self._dead_letters(chunk, shaped)
            self.dead_letters.write(tag, dead)  # OSError: FLB_RETRY
            self.metrics.add_dead_letters(len(dead))
        finished.add(DEAD_LETTERS_WRITTEN)

        # the usual first try has nothing done: no pass over every record
        todo = [entry for entry in shaped.entries if entry[2] not in done] if done else shaped.entries
        outcome = self._deliver(todo, finished)
        self.metrics.flush_done(outcome)
        if outcome.delivered:
            if chunk_id:
                self.ledger.forget(chunk_id)
            return FLB_OK
        self.ledger.remember(chunk_id or chunk_key(tag, data), finished)
        self.retry_warning.add(outcome.failed_entries, f"last: {outcome.entries - outcome.failed_entries} of "
                               f"{outcome.entries} Kinesis records delivered after {outcome.attempts} tries, "
                               f"{outcome.last_error}")
        self._check_send_failure_timeout()
        return FLB_RETRY

    def _deliver(self, shaped, finished):
        """Packs and sends shaped records; adds every event that Kinesis
        acknowledged to `finished`. An aggregate that landed on another shard
        than predicted is checked against the refreshed shard map, and its
        records are sent again if a KCL consumer would drop it (once
        re-aggregated, then if need be one by one, which cannot misroute)."""
        misrouted = []
        acked_records = acked_aggregates = aggregated = 0

        def on_acked(entries, answers):
            nonlocal acked_records, acked_aggregates, aggregated
            if self.packer is None:  # one record per entry
                finished.update([entry[3] for entry in entries])
                acked_records += len(entries)
                return
            for entry, answer in zip(entries, answers):
                events = entry[3]
                if type(events) is int:
                    finished.add(events)
                    acked_records += 1
                elif type(events) is AggregateEvents and answer.get("ShardId") != events.shard_id:
                    misrouted.append((events, answer.get("ShardId")))
                else:
                    finished.update(events)
                    acked_records += len(events)
                    if type(events) is AggregateEvents:
                        acked_aggregates += 1
                        aggregated += len(events)

        outcome = self.delivery.send(self.packer.pack(shaped) if self.packer else plain(shaped), on_acked)
        resend_with = (self.packer.pack, plain) if self.packer else ()  # plain cannot misroute
        for pack in resend_with:
            if not misrouted:
                break
            fine, again = self.packer.recheck(misrouted)
            misrouted.clear()
            finished.update(fine)
            acked_records += len(fine)
            if not outcome.delivered or not again:
                break  # what is left goes out when Fluent Bit retries the chunk
            outcome = self.delivery.send(pack(again), on_acked)
        if misrouted:  # defensive: only aggregates are checked, and the last round has none
            outcome.delivered = False

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
        """(reason, partition key, payload, record) for all that cannot be sent."""
        dead = [(reason, None, None, body) for _ts, body, reason in chunk.rejected]
        if chunk.error:
            dead.append((chunk.error, None, None, chunk.undecoded))
        dead.extend((reason, key, payload, chunk.events[index][1])
                    for index, reason, key, payload in shaped.rejected)
        return dead

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
        self.stop.set()
        self.reporting.close()
        self.client.pool.clear()


def _short_error(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


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

        name = f"kinesis.{instance_id}"
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
