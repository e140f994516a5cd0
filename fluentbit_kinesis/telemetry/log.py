"""Logging through Fluent Bit's own log function, at its levels.

A message is only formatted when its level is enabled: the instance's
`log_level` (through output_log_check) or FLB_LOG_LEVEL when set.

Fluent Bit formats a line into a 4 KiB buffer and cuts what does not fit, so
a message is sent as one line per line of text, each with the instance's
name, and a line too long for the buffer as numbered parts ("(part 1/2)"),
each cut at a character boundary."""
import threading
import time

from .redact import redact

ERROR, WARN, INFO, DEBUG, TRACE = 1, 2, 3, 4, 5
# Fluent Bit's buffer is 4096 - 8 bytes, its header ("[date time.ms] [level] ",
# terminal colours included) under 60: this leaves room for both
MAX_LINE_BYTES = 3900


def split_message(text, limit=MAX_LINE_BYTES):
    """The lines Fluent Bit can print whole for `text`, in order."""
    lines = []
    for line in text.splitlines() or [""]:
        data = line.encode("utf-8", "replace")
        if len(data) <= limit:
            lines.append(line)
            continue
        parts, budget = [], limit - len(" (part 999/999)")
        while data:
            cut = min(budget, len(data))
            while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # not inside a character
                cut -= 1
            parts.append(data[:cut].decode("utf-8"))
            data = data[cut:]
        lines.extend(f"{part} (part {i}/{len(parts)})" for i, part in enumerate(parts, 1))
    return lines


class Logger:
    def __init__(self, emit, name, level):
        self._emit = emit  # (level, text) -> None
        self.prefix = f"[output:kinesis:{name}] "
        self.level = level

    def enabled(self, level):
        return level <= self.level

    def log(self, level, message):
        if level <= self.level:  # redact: the last guard, no credential in any line, whoever wrote it
            for line in split_message(redact(message, limit=None), MAX_LINE_BYTES - len(self.prefix.encode())):
                self._emit(level, self.prefix + line)

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
