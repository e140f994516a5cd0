"""Logging through Fluent Bit's own log function, at its levels.

A message is only formatted when its level is enabled: the instance's
`log_level` (through output_log_check) or FLB_LOG_LEVEL when set."""
import threading
import time

from .redact import redact

ERROR, WARN, INFO, DEBUG, TRACE = 1, 2, 3, 4, 5


class Logger:
    def __init__(self, emit, name, level):
        self._emit = emit  # (level, text) -> None
        self.prefix = f"[output:kinesis:{name}] "
        self.level = level

    def enabled(self, level):
        return level <= self.level

    def log(self, level, message):
        if level <= self.level:  # the last guard: no credential in any line, whoever wrote it
            self._emit(level, self.prefix + redact(message, limit=None))

    def error(self, message):
        self.log(ERROR, message)

    def warn(self, message):
        self.log(WARN, message)

    def info(self, message):
        self.log(INFO, message)

    def debug(self, message):
        self.log(DEBUG, message)


class RateLimitedWarning:
    """One warning per `interval` seconds for a repeating condition, with the
    count of occurrences since the last line, instead of a line each time."""

    def __init__(self, logger, message, interval=60.0):
        self.logger = logger
        self.message = message
        self.interval = interval
        self.pending = 0
        self.total = 0
        self.last = 0.0
        self._lock = threading.Lock()

    def add(self, count, detail=""):
        if count <= 0:
            return
        with self._lock:
            self.pending += count
            self.total += count
            now = time.monotonic()
            if now - self.last < self.interval:
                return
            pending, self.pending, self.last = self.pending, 0, now
        detail = f"; {detail}" if detail else ""
        self.logger.warn(f"{self.message} ({pending} records since the last warning, {self.total} in all{detail})")
