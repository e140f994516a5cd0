"""Fluent Bit msgpack chunk -> (timestamp, record) events.

Handles both layouts: `[[time, metadata], record]` (Fluent Bit >= 2.1) and
`[time, record]` (older). A time is an EventTime (ext type 0: u32 seconds,
u32 nanoseconds, big endian), an integer or a float. Group start/end markers
(seconds -1 / -2) are skipped. Strings that are not valid UTF-8 keep their
bytes as surrogateescape: shaping.TextPolicy decides what becomes of them.

What is not an event (not a [time, record] array, a body that is not a map, a
time of another type) is rejected; consecutive rejected items are kept as ONE
raw run (their bytes, a reason and a count), so a chunk of junk costs a few
objects, not one per byte.
"""
import collections
import struct
import time
from dataclasses import dataclass, field

import msgpack

_EVENT_TIME = struct.Struct(">II")
# group start/end markers: seconds -1 / -2 (as u32 inside an EventTime)
_GROUP_MARKER_SECONDS = (-1, -2)
_GROUP_MARKER_PREFIXES = (b"\xff\xff\xff\xff", b"\xff\xff\xff\xfe")
# msgpack.ExtType refuses the negative (reserved) codes; Fluent Bit can still
# hand them over in metadata or records, so they get a look-alike of their own
ReservedExt = collections.namedtuple("ExtType", "code data")


def _ext_hook(code, data):
    # EventTime stays as its 8 raw bytes: decoded only when a time is needed
    if code == 0 and len(data) == 8:
        return data
    if code < 0:
        return ReservedExt(code, data)
    return msgpack.ExtType(code, data)


def event_seconds(timestamp):
    """Seconds since the epoch, as a float, from any timestamp form."""
    if isinstance(timestamp, bytes):
        seconds, nanos = _EVENT_TIME.unpack(timestamp)
        return seconds + nanos / 1e9
    if isinstance(timestamp, (int, float)):
        return float(timestamp)
    return time.time()


def _time_problem(timestamp):
    """Why a time is not one (None when it is): EventTime, integer or float only,
    as the native fast path accepts."""
    kind = type(timestamp)
    if kind is bytes:
        return None if len(timestamp) == 8 else f"event time is {len(timestamp)} bytes, not an EventTime"
    if kind is int or kind is float:
        return None
    return f"event time is a {kind.__name__}, not an EventTime, integer or float"


def _is_group_marker(timestamp):
    if type(timestamp) is bytes:
        return timestamp[:4] in _GROUP_MARKER_PREFIXES
    return timestamp in _GROUP_MARKER_SECONDS


@dataclass
class RejectedRun:
    """Consecutive items of a chunk that are not events, kept as their raw bytes."""
    data: bytes
    reason: str  # the first item's
    count: int


@dataclass
class DecodedChunk:
    events: list = field(default_factory=list)  # (timestamp, record dict)
    rejected: list = field(default_factory=list)  # RejectedRun
    error: str = None  # why decoding stopped early (corrupt or truncated chunk)
    undecoded: bytes = b""  # the bytes after the point decoding stopped


def decode_chunk(data):
    """Decodes a whole chunk; never raises on bad input."""
    chunk = DecodedChunk()
    chunk.events = list(iter_events(data, chunk))
    return chunk


def iter_events(data, chunk):
    """Yields the (timestamp, record) events of a chunk one by one, so each can
    be shaped and dropped before the next is built; what is not an event goes
    to chunk.rejected / chunk.error. Never raises on bad input."""
    unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", ext_hook=_ext_hook,
                                strict_map_key=False, max_buffer_size=0)
    unpacker.feed(data)
    offset = 0  # where the next item starts
    run = None  # [start offset, count, first reason] of the rejected items in a row

    def close_run(end):
        start, count, reason = run
        chunk.rejected.append(RejectedRun(bytes(data[start:end]), reason, count))

    try:
        for item in unpacker:
            end = unpacker.tell()
            reason = None
            if type(item) is not list or len(item) != 2:
                reason = "event is not a [time, record] array"
            else:
                head, record = item
                timestamp = (head[0] if head else None) if type(head) is list else head
                # the common case first: a map body with an EventTime that is no group marker
                if (type(record) is dict and type(timestamp) is bytes and len(timestamp) == 8
                        and timestamp[0] != 0xFF):
                    pass
                elif _time_problem(timestamp) is None and _is_group_marker(timestamp):
                    reason = ""  # skipped, not rejected
                elif type(record) is not dict:
                    reason = "record body is not a map"
                else:
                    reason = _time_problem(timestamp)
            if reason:
                if run is None:
                    run = [offset, 0, reason]
                run[1] += 1
            else:
                if run is not None:
                    close_run(offset)
                    run = None
                offset = end
                if reason is None:
                    yield timestamp, record
                continue
            offset = end
        if run is not None:
            close_run(offset)
            run = None
        if offset < len(data):
            chunk.error = "chunk ends inside an event (truncated)"
            chunk.undecoded = bytes(data[offset:])
    except Exception as exc:  # msgpack's errors, and whatever a hostile chunk finds: never out of a flush
        if run is not None:
            close_run(offset)
        chunk.error = f"corrupt chunk: {exc.__class__.__name__}: {str(exc)[:200]}"
        chunk.undecoded = bytes(data[offset:])
