"""What each instance did, for operators: counters, shown in Fluent Bit's own
metrics (/api/v2/metrics/prometheus, Fluent Bit 2.0+), on a Prometheus
listener (opt-in, `metrics_port`; for 1.9) and in a summary line every
`metrics_log_interval`.

Counting needs no changes to delivery: delivery.counted_client wraps the
Kinesis client (calls, acknowledged entries, bytes, user records) and the
flush hands over its Outcome (retries, throttling, last error) and its dead
letters.
Instances that share a port share one listener; every sample carries an
`instance` label, so two instances never clash.
"""
import threading
import time
from array import array
from collections import Counter


from .listener import Listener
from .redact import redact

PREFIX = "fluentbit_kinesis_"
MAX_ERROR_CHARS = 200


class InstanceMetrics:
    def __init__(self, instance, stream):
        self.instance = instance
        self.stream = stream or ""
        self._lock = threading.Lock()
        self.records_sent = 0          # user records acknowledged by Kinesis
        self.kinesis_records_sent = 0  # PutRecords entries acknowledged (aggregates count once)
        self.bytes_sent = 0            # data + partition key of acknowledged entries
        self.put_records_calls = 0
        self.failed_calls = 0          # calls that failed as a whole
        self.retries = 0               # retry rounds within flushes
        self.throttled = Counter()     # shard id (or "request") -> throttled entries
        self.paced = Counter()         # shard id -> seconds flushes waited for its write limit
        self.shares = {}               # shard id -> share of its write limit paced at (last flush)
        self.dead_lettered = 0
        self.invalid_utf8_records = 0  # invalid UTF-8 or bin values replaced, encoded or dead-lettered
        self.unaggregated = 0          # records sent plain while aggregation could not be used
        self.not_normalized = 0        # field_format: records sent as they came
        self.last_error = ""
        self.last_error_time = 0.0
        self.fluent_bit = None  # FluentBitMetrics when Fluent Bit's metrics can be reached

    def call_done(self, table, acked, throttled, acked_bytes=None):
        """One PutRecords answered: the entries acknowledged (indices into the
        flush's EntryTable), the shard id (or "unknown") of each entry
        throttled, and the acknowledged entries' bytes when the caller has
        them (else summed from table.sizes)."""
        # per request, in C-level map and sum: no Python frame per entry
        if type(table.events) is array:  # ints: one record each (the fast path's table)
            user_records = len(acked)
        else:
            events = list(map(table.events.__getitem__, acked))
            plain = list(map(type, events)).count(int)  # one record each
            user_records = plain if plain == len(events) else \
                plain + sum(_user_records(e) for e in events if type(e) is not int)
        if acked_bytes is None:  # data and key bytes, as Kinesis counts them
            acked_bytes = sum(map(table.sizes.__getitem__, acked))
        with self._lock:
            if throttled:  # the usual answer has none: Counter.update is several Python steps
                self.throttled.update(throttled)
            self.put_records_calls += 1
            self.kinesis_records_sent += len(acked)
            self.records_sent += user_records
            self.bytes_sent += acked_bytes

    def call_failed(self, error, entries):
        with self._lock:
            if error.throttled:
                self.throttled["request"] += len(entries)
            self.put_records_calls += 1
            self.failed_calls += 1
            self._set_error(str(error))

    def flush_done(self, outcome):
        with self._lock:
            self.retries += outcome.attempts
            self.paced.update(outcome.paced)
            self.shares.update(outcome.shares)
            if outcome.last_error:
                self._set_error(outcome.last_error)
        self.publish()

    def publish(self):
        """Copies the counters into Fluent Bit's metrics (after each flush)."""
        if self.fluent_bit is not None:
            self.fluent_bit.publish(self)

    def add_dead_letters(self, count):
        with self._lock:
            self.dead_lettered += count

    def add_invalid_utf8(self, count):
        with self._lock:
            self.invalid_utf8_records += count

    def add_not_normalized(self, count):
        with self._lock:
            self.not_normalized += count

    def add_unaggregated(self, count):
        with self._lock:
            self.unaggregated += count

    def _set_error(self, text):
        self.last_error = redact(text, limit=MAX_ERROR_CHARS)
        self.last_error_time = time.time()

    @property
    def aggregation_ratio(self):
        """User records per Kinesis record; 1.0 without aggregation."""
        return self.records_sent / self.kinesis_records_sent if self.kinesis_records_sent else 0.0

    def summary(self):
        with self._lock:
            throttled = sum(self.throttled.values())
            paced = sum(self.paced.values())
            return (f"metrics: {self.records_sent} records sent as {self.kinesis_records_sent} Kinesis records "
                    f"({self.bytes_sent} bytes, {self.aggregation_ratio:.1f} per Kinesis record) in "
                    f"{self.put_records_calls} PutRecords calls; {self.retries} retries, {throttled} throttled, "
                    f"{paced:.1f} s paced at shard limits, "
                    f"{self.dead_lettered} dead-lettered, {self.invalid_utf8_records} with invalid UTF-8; last error: {self.last_error or 'none'}")


# (attribute, name, help): the same names as on metrics_port
_COUNTERS = (
    ("records_sent", "records_sent_total", "User records acknowledged by Kinesis"),
    ("kinesis_records_sent", "kinesis_records_sent_total", "PutRecords entries acknowledged (an aggregate counts once)"),
    ("bytes_sent", "bytes_sent_total", "Bytes (data and partition key) of acknowledged entries"),
    ("put_records_calls", "put_records_calls_total", "PutRecords calls made"),
    ("failed_calls", "put_records_failed_calls_total", "PutRecords calls that failed as a whole"),
    ("retries", "retries_total", "Retry rounds of failed entries within flushes"),
    ("dead_lettered", "dead_lettered_records_total", "Records that could not be sent and were dead-lettered"),
    ("invalid_utf8_records", "invalid_utf8_records_total",
     "Records whose invalid UTF-8 or bin values were replaced, base64-encoded or dead-lettered (invalid_utf8)"),
    ("unaggregated", "records_unaggregated_total",
     "Records sent unaggregated because aggregation could not be used (no shard map)"),
    ("not_normalized", "records_not_normalized_total",
     "Records sent as they came because field_format could not normalize them"),
)


THROTTLED_HELP = "Entries throttled, by shard (\"request\": whole call)"
PACED_HELP = "Seconds flushes waited for a shard's write limit (pacing), by shard"
SHARE_HELP = ("Part of a shard's write limit this process paces at: 0.98 alone; lower while other "
              "producers take part of the shard (learned from throttles)")


class FluentBitMetrics:
    """The instance's counters in Fluent Bit's own metrics context, as
    fluentbit_kinesis_*{name="kinesis.0"} (the name Fluent Bit gives the
    output, or its alias). `create(name, help, gauge, with_shard)` and
    `set(metric, gauge, value, shard or None)` reach cmetrics through the shim.
    Counters are set to our totals, so they are exact whatever the order of
    publishes (cmetrics refuses a counter going down)."""

    def __init__(self, create, set_value):
        self.set_value = set_value
        self._lock = threading.Lock()
        self.counters = [(attr, create(name, text, False, False)) for attr, name, text in _COUNTERS]
        self.throttled = create("throttled_entries_total", THROTTLED_HELP, False, True)
        self.paced = create("pacing_delay_seconds_total", PACED_HELP, False, True)
        self.shares = create("pacing_share", SHARE_HELP, True, True)
        self.ratio = create("aggregation_ratio", "User records per Kinesis record", True, False)
        self.error_time = create("last_error_timestamp_seconds", "Unix time of the last error; 0: none", True, False)

    def publish(self, m):
        with m._lock:
            values = [(metric, getattr(m, attr)) for attr, metric in self.counters]
            throttled = sorted(m.throttled.items())
            paced, shares = sorted(m.paced.items()), sorted(m.shares.items())
            ratio, error_time = m.aggregation_ratio, m.last_error_time
        with self._lock:
            for metric, value in values:
                self.set_value(metric, False, value, None)
            # a shard's series is made at its first throttle (the shards are not known up front)
            for shard, count in throttled:
                self.set_value(self.throttled, False, count, shard)
            for shard, seconds in paced:
                self.set_value(self.paced, False, seconds, shard)
            for shard, share in shares:
                self.set_value(self.shares, True, share, shard)
            self.set_value(self.ratio, True, ratio, None)
            self.set_value(self.error_time, True, error_time, None)


def _user_records(events):
    return len(events) if isinstance(events, (list, tuple, set, frozenset)) else 1


# ---- Prometheus (metrics_port) ---------------------------------------------------

class _Collector:
    """Samples every attached instance at scrape time."""

    def __init__(self):
        self.instances = []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        labels = ["instance", "stream"]
        families = {attribute: CounterMetricFamily(PREFIX + name.removesuffix("_total"), help_text, labels=labels)
                    for attribute, name, help_text in _COUNTERS}
        throttled = CounterMetricFamily(PREFIX + "throttled_entries", THROTTLED_HELP, labels=labels + ["shard"])
        paced = CounterMetricFamily(PREFIX + "pacing_delay_seconds", PACED_HELP, labels=labels + ["shard"])
        shares = GaugeMetricFamily(PREFIX + "pacing_share", SHARE_HELP, labels=labels + ["shard"])
        ratio = GaugeMetricFamily(PREFIX + "aggregation_ratio", "User records per Kinesis record", labels=labels)
        error_time = GaugeMetricFamily(PREFIX + "last_error_timestamp_seconds", "Unix time of the last error; 0: none", labels=labels)
        error = InfoMetricFamily(PREFIX + "last_error", "The last error", labels=labels)
        for m in list(self.instances):
            with m._lock:
                key = [m.instance, m.stream]
                for name, family in families.items():
                    family.add_metric(key, getattr(m, name))
                for shard, count in sorted(m.throttled.items()):
                    throttled.add_metric(key + [shard], count)
                for shard, seconds in sorted(m.paced.items()):
                    paced.add_metric(key + [shard], seconds)
                for shard, share in sorted(m.shares.items()):
                    shares.add_metric(key + [shard], share)
                ratio.add_metric(key, m.aggregation_ratio)
                error_time.add_metric(key, m.last_error_time)
                if m.last_error:
                    error.add_metric(key, {"error": m.last_error})
        yield from families.values()
        yield from (throttled, paced, shares, ratio, error_time, error)


class _Listener:
    def __init__(self, address, port):
        # imported only with metrics_port: 1 MB that most instances never use
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self.collector = _Collector()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        self.server = Listener(address, port, lambda: (generate_latest(registry), CONTENT_TYPE_LATEST))

    def close(self):
        self.server.close()


_listeners = {}  # (address, port) -> _Listener
_listeners_lock = threading.Lock()


class Reporting:
    """Starts the listener and the summary line for one instance; `close` undoes both."""

    def __init__(self, metrics, settings, logger, stop_event):
        self.metrics = metrics
        self.log = logger
        self.key = None
        self.thread = None
        self.stop_event = stop_event
        if settings.metrics_port:
            self._listen(settings.metrics_listen, settings.metrics_port)
        if settings.metrics_log_interval:
            self.thread = threading.Thread(target=self._summaries, args=(settings.metrics_log_interval,),
                                           name=f"{metrics.instance}-metrics", daemon=True)
            self.thread.start()

    def _listen(self, address, port):
        key = (address, port)
        with _listeners_lock:
            listener = _listeners.get(key)
            if listener is None:
                try:
                    listener = _listeners[key] = _Listener(address, port)
                except OSError as exc:
                    self.log.error(f"metrics: cannot listen on {address}:{port}: {exc}; metrics are not served")
                    return
            listener.collector.instances.append(self.metrics)
        self.key = key
        self.log.info(f"metrics: Prometheus text format on http://{address}:{port}/metrics")

    def _summaries(self, interval):
        while not self.stop_event.wait(interval):
            self.log.info(self.metrics.summary())

    def close(self):
        self.metrics.publish()
        if self.thread is not None:
            self.stop_event.set()
            self.thread.join(5)
            self.log.info(self.metrics.summary())
        if self.key is None:
            return
        with _listeners_lock:
            listener = _listeners[self.key]
            listener.collector.instances.remove(self.metrics)
            if not listener.collector.instances:
                del _listeners[self.key]
                listener.close()
        self.key = None
