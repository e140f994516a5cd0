"""Dead letters: records that cannot be sent, kept as JSON lines with the
reason, so nothing is dropped silently.

Each line: {"time", "tag", "reason", "partition_key", "format", "data"}, where
data is base64 of the payload that would have been sent ("format": "payload")
or of the original record as msgpack when it never became one ("msgpack";
"repr" if msgpack cannot pack it; "raw" for bytes of the chunk that are no
event: a run of consecutive ones is one dead letter, with "count" items;
"none" when the record could not be recovered). Data larger than a part is
split over consecutive lines with "part" (1, 2, ...) and "parts": join their
decoded data in order.

Lines are streamed to the file in bounded pieces, and the file is rotated to
FILE.1 (one old file kept) before a line would take it past its size cap. It
is created 0600 and never opened through a symbolic link. A failure to write
raises, so the flush answers FLB_RETRY and nothing is lost.
"""
import base64
import errno
import os
import stat
import threading
import time

import orjson

from ..telemetry.redact import redact

MAX_PART_BYTES = 4 * 1024 * 1024  # of data per line, before base64: a 2 MiB chunk's record fits one
MIN_PART_BYTES = 256
LINE_OVERHEAD = 2048  # the most a line's other fields take, in practice
WRITE_BYTES = 256 * 1024  # lines are handed to the kernel in pieces of about this
_OPEN_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
               | os.O_NONBLOCK)  # a FIFO at the path fails instead of blocking the flush


class DeadLetters:
    def __init__(self, path, max_bytes, logger):
        self.path = path
        self.max_bytes = max_bytes
        self.logger = logger
        self.count = 0
        # a line stays under half the cap, so rotating before it keeps the file under the cap
        self.part_bytes = max(MIN_PART_BYTES, min(MAX_PART_BYTES, (max_bytes // 2 - LINE_OVERHEAD) * 3 // 4))
        self._lock = threading.Lock()

    def write(self, tag, items, records):
        """items: DeadLetter (any iterable, consumed once), standing for
        `records` records. Returns once their lines are on disk (or were
        logged as dropped)."""
        if not records:
            return
        self.count += records
        reasons = []  # the first few, for the log line
        if not self.path:
            for item in items:
                if len(reasons) < 3 and item.reason not in reasons:
                    reasons.append(item.reason)
            self.logger.error(f"dropped {records} records that cannot be sent ({self.count} in all; "
                              "no dead_letter_file set): " + "; ".join(redact(r) for r in sorted(reasons)))
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock:
            try:
                safe = {}  # reason -> redacted: 100,000 rejects often share one reason
                with _Appender(self.path, self.max_bytes) as out:
                    for item in items:
                        if not reasons:
                            reasons.append(item.reason)
                        reason = safe.get(item.reason)
                        if reason is None:
                            reason = redact(item.reason)
                            if len(safe) < 1000:
                                safe[item.reason] = reason
                        for line in self._lines(now, tag, item, reason):
                            out.write(line)
            except OSError as exc:
                self.logger.error(f"cannot write {records} dead letters to {self.path}: "
                                  f"{redact(exc.strerror or exc)}")
                raise
        self.logger.warn(f"{records} records written to dead_letter_file {self.path}: "
                         + redact(reasons[0] if reasons else "") + (" (and others)" if records > 1 else ""))

    def _lines(self, now, tag, item, reason):
        """The JSON lines of one dead letter (`reason` redacted), one data part at a time."""
        if item.payload is not None:
            fmt, data = "payload", item.payload
        else:
            fmt, data = item.original or ("none", b"")
        line = {"time": now, "tag": tag, "reason": reason, "partition_key": item.partition_key,
                "format": fmt}
        if item.count != 1:
            line["count"] = item.count
        step = self.part_bytes
        parts = max(1, -(-len(data) // step))
        for number in range(parts):
            if parts > 1:
                line["part"], line["parts"] = number + 1, parts
            line["data"] = base64.b64encode(data[number * step:(number + 1) * step]).decode()
            yield _dumps(line) + b"\n"


def _dumps(line):
    try:
        return orjson.dumps(line)
    except TypeError:  # a lone surrogate in a key or tag: keep the line, replace the character
        text = {k: v.encode("utf-8", "replace").decode() if isinstance(v, str) else v for k, v in line.items()}
        return orjson.dumps(text)


class _Appender:
    """Appends lines to the dead-letter file in bounded writes, rotating it
    before a line would pass `cap`; fsync'ed before rotating and on close."""

    def __init__(self, path, cap):
        self.path = path
        self.cap = cap
        self.pending = []
        self.pending_bytes = 0
        self.fd, self.size = _open(path)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        try:
            if kind is None:
                self._flush()
                os.fsync(self.fd)
        finally:
            if self.fd >= 0:  # -1: reopening after a rotation failed
                os.close(self.fd)

    def write(self, line):
        if self.size + self.pending_bytes and self.size + self.pending_bytes + len(line) > self.cap:
            self._rotate()
        self.pending.append(line)
        self.pending_bytes += len(line)
        if self.pending_bytes >= WRITE_BYTES:
            self._flush()

    def _flush(self):
        if not self.pending:
            return
        view = memoryview(b"".join(self.pending))
        self.pending.clear()
        self.pending_bytes = 0
        while view:
            written = os.write(self.fd, view)
            self.size += written
            view = view[written:]

    def _rotate(self):
        self._flush()
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        # rename never follows a symbolic link: one at FILE.1 is replaced, not written through
        os.replace(self.path, self.path + ".1")
        self.fd, self.size = _open(self.path)


def _open(path):
    """(descriptor, size) of the dead-letter file, created 0600; refuses a
    symbolic link or anything but a regular file at the path."""
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(exc.errno, "it is a symbolic link; dead letters are never written through one") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "it is not a regular file")
    return fd, info.st_size
