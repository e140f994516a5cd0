"""Dead letters: records that cannot be sent, kept as JSON lines with the
reason, so nothing is dropped silently.

Each line: {"time", "tag", "reason", "partition_key", "format", "data"}, where
data is base64 of the payload that would have been sent ("format": "payload")
or of the original record as msgpack when it never became one ("msgpack";
"repr" if msgpack cannot pack it; "raw" for the undecodable bytes of a corrupt
chunk). A failure to write raises, so the flush answers FLB_RETRY and nothing
is lost.
The file is rotated to FILE.1 when it passes its size cap (one old file kept).
"""
import base64
import os
import threading
import time

import msgpack
import orjson


class DeadLetters:
    def __init__(self, path, max_bytes, logger):
        self.path = path
        self.max_bytes = max_bytes
        self.logger = logger
        self.count = 0
        self._lock = threading.Lock()

    def write(self, tag, items):
        """items: (reason, partition key or None, payload bytes or None, record).
        Returns once the lines are on disk (or were logged as dropped)."""
        if not items:
            return
        self.count += len(items)
        if not self.path:
            reasons = sorted({reason for reason, *_ in items})
            self.logger.error(f"dropped {len(items)} records that cannot be sent ({self.count} in all; "
                              "no dead_letter_file set): " + "; ".join(reasons[:3]))
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = []
        for reason, key, payload, record in items:
            if payload is None:
                fmt, raw = _packed(record)
            else:
                fmt, raw = "payload", payload
            lines.append(orjson.dumps({"time": now, "tag": tag, "reason": reason, "partition_key": key,
                                       "format": fmt, "data": base64.b64encode(raw).decode()}) + b"\n")
        blob = b"".join(lines)
        with self._lock:
            try:
                self._rotate_if_needed(len(blob))
                with open(self.path, "ab") as out:
                    out.write(blob)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                self.logger.error(f"cannot write {len(items)} dead letters to {self.path}: {exc}")
                raise
        self.logger.warn(f"{len(items)} records written to dead_letter_file {self.path}: "
                         + items[0][0] + (" (and others)" if len(items) > 1 else ""))

    def _rotate_if_needed(self, incoming):
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return
        if size and size + incoming > self.max_bytes:
            os.replace(self.path, self.path + ".1")


def _packed(record):
    """("msgpack", bytes) of a record, or ("repr", text) when msgpack cannot pack it."""
    if isinstance(record, (bytes, bytearray)):
        return "raw", bytes(record)  # the undecodable rest of a corrupt chunk
    try:
        return "msgpack", msgpack.packb(record, use_bin_type=True, default=repr,
                                        unicode_errors="surrogateescape")  # invalid UTF-8: the bytes as received
    except (ValueError, TypeError, OverflowError, RecursionError):
        return "repr", repr(record).encode("utf-8", "replace")
