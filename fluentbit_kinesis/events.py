"""Fluent Bit msgpack chunk -> (timestamp, record) events.

Handles both layouts: `[[time, metadata], record]` (Fluent Bit >= 2.1) and
`[time, record]` (older). A time is an EventTime (ext type 0: u32 seconds,
u32 nanoseconds, big endian), an integer or a float. Group start/end markers
(seconds -1 / -2) are skipped. Strings that are not valid UTF-8 keep their
bytes as surrogateescape: shaping.TextPolicy decides what becomes of them.
"""
import struct
import time
from dataclasses import dataclass, field

import msgpack

_EVENT_TIME = struct.Struct(">II")
# group start/end markers: seconds -1 / -2 (as u32 inside an EventTime)
_GROUP_MARKER_SECONDS = (-1, -2)
_GROUP_MARKER_PREFIXES = (b"\xff\xff\xff\xff", b"\xff\xff\xff\xfe")


def _ext_hook(code, data):
    # EventTime stays as its 8 raw bytes: decoded only when a time is needed
    if code == 0 and len(data) == 8:
        return data
    return msgpack.ExtType(code, data)


def event_seconds(timestamp):
    """Seconds since the epoch, as a float, from any timestamp form."""
    if isinstance(timestamp, bytes):
        seconds, nanos = _EVENT_TIME.unpack(timestamp)
        return seconds + nanos / 1e9
    if isinstance(timestamp, (int, float)):
        return float(timestamp)
    return time.time()


def _is_group_marker(timestamp):
    if type(timestamp) is bytes:
        return timestamp[:4] in _GROUP_MARKER_PREFIXES
    return timestamp in _GROUP_MARKER_SECONDS


@dataclass
class DecodedChunk:
    events: list = field(default_factory=list)  # (timestamp, record dict)
    rejected: list = field(default_factory=list)  # (timestamp, raw body, reason)
    error: str = None  # why decoding stopped early (corrupt or truncated chunk)
    undecoded: bytes = b""  # the bytes after the point decoding stopped


def decode_chunk(data):
    """Decodes a whole chunk; never raises on bad input."""
    chunk = DecodedChunk()
    unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", ext_hook=_ext_hook,
                                strict_map_key=False, max_buffer_size=0)
    unpacker.feed(data)
    append = chunk.events.append
    offset = 0
    try:
        for item in unpacker:
            offset = unpacker.tell()
            if type(item) is not list or len(item) != 2:
                chunk.rejected.append((None, item, "event is not a [time, record] array"))
                continue
            head, record = item
            timestamp = (head[0] if head else None) if type(head) is list else head
            # the common case first: a map body with an EventTime that is no group marker
            if type(record) is dict and type(timestamp) is bytes and timestamp[0] != 0xFF:
                append((timestamp, record))
            elif _is_group_marker(timestamp):
                continue
            elif type(record) is dict:
                append((timestamp, record))
            else:
                chunk.rejected.append((timestamp, record, "record body is not a map"))
        if offset < len(data):
            chunk.error = "chunk ends inside an event (truncated)"
            chunk.undecoded = bytes(data[offset:])
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        chunk.error = f"corrupt chunk: {exc.__class__.__name__}: {exc}"
        chunk.undecoded = bytes(data[offset:])
    return chunk
