"""The plugin's series in Fluent Bit's cmetrics are set only when their value
changed since the last publish (cmetrics keeps the last value): with many
shards a publish after every chunk set hundreds of unchanged pacing shares.
What Fluent Bit's endpoint then shows under a real Fluent Bit is in
tests/e2e/test_fluent_bit.py::test_plugin_metrics_on_fluent_bits_endpoint."""
import cffi

from fluentbit_kinesis.telemetry.fluent_bit import fluent_bit_metrics


class CMetrics:
    """The shim's two cmetrics calls, recorded: series -> the values set, in order."""

    def __init__(self):
        self.ffi, self.made, self.sets = cffi.FFI(), [], []

    def fbk_cmt_create(self, handle, name, text, gauge, with_shard):
        self.made.append(name.decode())
        return len(self.made)  # a metric handle

    def fbk_cmt_set(self, handle, metric, gauge, value, label):
        shard = None if label == self.ffi.NULL else self.ffi.string(label).decode()
        self.sets.append((self.made[metric - 1], shard, value))


def test_only_changed_values_are_set():
    lib = CMetrics()
    metrics = fluent_bit_metrics(lib.ffi, lib, handle=None)
    share = metrics.shares
    for _ in range(3):
        metrics.set_value(share, True, 0.98, "shardId-1")
        metrics.set_value(share, True, 0.98, "shardId-2")
    assert lib.sets == [("pacing_share", "shardId-1", 0.98), ("pacing_share", "shardId-2", 0.98)]
    metrics.set_value(share, True, 0.5, "shardId-2")
    metrics.set_value(share, True, 0.5, "shardId-2")
    metrics.set_value(metrics.ratio, True, 0.5, None)  # another series, the same value
    metrics.set_value(metrics.ratio, True, 1, None)
    metrics.set_value(metrics.ratio, True, 1.0, None)  # an int and its float are one value
    assert lib.sets[2:] == [("pacing_share", "shardId-2", 0.5), ("aggregation_ratio", None, 0.5),
                            ("aggregation_ratio", None, 1.0)]


def test_a_publish_sets_every_series_first_then_what_moved():
    lib = CMetrics()
    metrics = fluent_bit_metrics(lib.ffi, lib, handle=None)

    class Counts:  # telemetry.metrics.InstanceMetrics' fields that publish reads
        import threading
        _lock = threading.Lock()
        throttled, paced, shares = {}, {}, {f"shardId-{i}": 0.98 for i in range(256)}
        aggregation_ratio, last_error_time = 1.0, 0

    counts = Counts()
    for attribute, _metric in metrics.counters:
        setattr(counts, attribute, 0)
    metrics.publish(counts)
    first = len(lib.sets)
    assert first == len(metrics.counters) + 256 + 2  # every series exists from the first publish
    metrics.publish(counts)
    assert len(lib.sets) == first
    counts.shares["shardId-7"] = 0.6
    setattr(counts, metrics.counters[0][0], 500)
    metrics.publish(counts)
    assert sorted(lib.sets[first:], key=str) == sorted([("pacing_share", "shardId-7", 0.6),
                                                       (lib.made[0], None, 500.0)], key=str)
