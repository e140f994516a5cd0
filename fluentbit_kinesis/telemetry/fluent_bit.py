"""The plugin's log and metrics inside Fluent Bit's own, through the shim's
callbacks (csrc/): a Logger at the instance's log_level, and the counters of
telemetry.metrics on the instance's cmetrics context."""
from .log import INFO, Logger
from .metrics import FluentBitMetrics


def make_logger(lib, handle, settings_level, name):
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


def fluent_bit_metrics(ffi, lib, handle):
    """FluentBitMetrics on the instance's cmetrics context (csrc/flbapi.c)."""
    shards = {}  # shard id -> its C string, kept alive
    # (metric, shard) -> the value cmetrics holds: it keeps it, so a publish sets only what
    # changed (a stream of 256 shards has 256 pacing shares, and most stay as they are)
    published = {}

    def create(name, text, gauge, with_shard):
        return lib.fbk_cmt_create(handle, name.encode(), text.encode(), int(gauge), int(with_shard))

    def set_value(metric, gauge, value, shard):
        value, key = float(value), (metric, shard)
        if published.get(key) == value:
            return
        label = ffi.NULL
        if shard is not None:
            label = shards.get(shard)
            if label is None:
                label = shards[shard] = ffi.new("char[]", str(shard).encode("utf-8", "replace"))
        lib.fbk_cmt_set(handle, metric, int(gauge), value, label)
        published[key] = value

    return FluentBitMetrics(create, set_value)
