"""Record -> payload bytes and partition key.

Order of the steps (as the AWS Go plugin, with its known bugs fixed):
partition key from the original record; data_keys filter; time_key added
(after the filter, so the filter cannot remove it); replace_dots; log_key or
JSON; append_newline; compression; size check.
"""
import base64
import itertools
import os
import struct
import time
from dataclasses import dataclass, field

import orjson

from . import fastpath
from .compression import compressor
from .deadletter import pack_original
from .events import DecodedChunk, event_seconds, iter_events

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
RANDOM_KEY_POOL = 4096


def _no_bin_default(value):
    # unknown ext types: text, as the Go plugin does; a bin value needs the careful encoder
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("bin value")
    return str(value)


class TextPolicy:
    """invalid_utf8: what becomes of msgpack bin values and of strings that are
    not valid UTF-8 (events.decode_chunk keeps their bytes as surrogateescape).
    replace: U+FFFD per bad sequence, as the AWS Go plugin (a bin value that is
    valid UTF-8 is its text); base64: bin values and invalid strings are sent
    as their base64 text; dead_letter: replaced as with replace, and the
    Shaper dead-letters the record. Each call says whether it altered
    anything: those records are counted."""

    def __init__(self, mode="replace"):
        self.mode = mode

    def text(self, value):
        """(str, altered) for a decoded string."""
        if value.isascii():
            return value, False
        try:
            value.encode()
            return value, False
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
        if self.mode == "base64":
            return base64.b64encode(raw).decode(), True
        return raw.decode("utf-8", "replace"), True

    def binary(self, raw):
        """(str, altered) for a bin value."""
        if self.mode == "base64":
            return base64.b64encode(raw).decode(), True
        try:
            return raw.decode(), False
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace"), True

    def json(self, value):
        """(JSON bytes, altered). Valid text without bin values takes one orjson call."""
        try:
            return orjson.dumps(value, default=_no_bin_default, option=_JSON_OPTIONS), False
        except orjson.JSONEncodeError:
            pass  # a bin value or invalid UTF-8 somewhere (or not encodable at all: raised below)
        altered = []

        def default(item):
            if isinstance(item, (bytes, bytearray)):
                text, changed = self.binary(bytes(item))
                if changed:
                    altered.append(item)
                return text
            return str(item)

        fixed = self._fixed(value, altered)
        return orjson.dumps(fixed, default=default, option=_JSON_OPTIONS), bool(altered)

    def _fixed(self, value, altered):
        """value with every invalid string (keys too) made text."""
        kind = type(value)
        if kind is str:
            text, changed = self.text(value)
            if changed:
                altered.append(value)
            return text
        if kind is dict:
            return {self._fixed(k, altered) if type(k) is str else k: self._fixed(v, altered)
                    for k, v in value.items()}
        if kind is list:
            return [self._fixed(v, altered) for v in value]
        return value


class ShapeError(ValueError):
    """A record that cannot become a Kinesis record; goes to dead letters."""


def _json_or_reject(encode, value):
    try:
        return encode(value)
    except (TypeError, orjson.JSONEncodeError) as exc:  # e.g. a bin map key, nesting past 254
        raise ShapeError(f"record cannot be encoded as JSON: {exc}") from None


def _rejection(exc):
    if isinstance(exc, ShapeError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "record is nested too deeply to encode"
    return f"record cannot be shaped: {exc.__class__.__name__}: {str(exc)[:200]}"


class InvalidTextError(ShapeError):
    """invalid_utf8 dead_letter: the record has invalid UTF-8 (counted)."""


@dataclass
class ShapedBatch:
    entries: list = field(default_factory=list)   # (data bytes, partition key, event index)
    rejected: list = field(default_factory=list)  # (event index, reason, key, payload or None)
    # event index -> the record of a rejected one without payload, packed for its dead letter:
    # kept instead of the record, so a chunk of rejects holds no Python object per field
    originals: dict = field(default_factory=dict)
    random_keys: int = 0  # records whose partition_key was missing or not a string
    invalid_utf8: int = 0  # records with invalid UTF-8 or bin values replaced, encoded or dead-lettered


def replace_dots(value, replacement):
    if type(value) is dict:
        return {(k.replace(".", replacement) if type(k) is str else k): replace_dots(v, replacement)
                for k, v in value.items()}
    if type(value) is list:
        return [replace_dots(v, replacement) for v in value]
    return value


class TimeFormatter:
    """strftime in local time, plus %L (milliseconds) and %f (microseconds)."""

    def __init__(self, fmt):
        self.fmt = fmt.replace("%L", "\ue000L").replace("%f", "\ue000f")
        self.has_fraction = "\ue000" in self.fmt
        self._cache = (None, None)

    def __call__(self, timestamp):
        try:
            seconds = event_seconds(timestamp)
            whole = int(seconds // 1)
            cached_second, text = self._cache
            if cached_second != whole:
                text = time.strftime(self.fmt, time.localtime(whole))
                self._cache = (whole, text)
        except (ValueError, OverflowError, OSError, struct.error) as exc:  # NaN, inf, year 10^9
            raise ShapeError(f"event time {_time_text(timestamp)} cannot be formatted: {exc}") from None
        if self.has_fraction:
            micros = int(round((seconds - whole) * 1e6))
            micros = min(micros, 999999)
            text = text.replace("\ue000L", "%03d" % (micros // 1000)).replace("\ue000f", "%06d" % micros)
        return text


def _time_text(timestamp):
    if isinstance(timestamp, bytes):
        return "EventTime 0x" + timestamp.hex()
    return repr(timestamp)[:40]


class RandomKey(str):
    """A partition key made up because the record had none: aggregation may
    replace it with any key of its choice."""
    __slots__ = ()


def _random_keys():
    keys = [RandomKey(os.urandom(8).hex()) for _ in range(RANDOM_KEY_POOL)]
    return itertools.cycle(keys)


class FastChunk:
    """What the fast path leaves of a chunk: it declines on anything the
    Python path would reject, so there is nothing but events (their records,
    for dead letters, are in ShapedBatch.originals)."""
    rejected = ()
    error = None
    undecoded = b""


class Shaper:
    def __init__(self, settings):
        self.key_path = settings.partition_key
        self.fixed_key = settings.fixed_partition_key
        self.data_keys = frozenset(settings.data_keys) if settings.data_keys else None
        self.time_key = settings.time_key or None
        self.format_time = TimeFormatter(settings.time_key_format) if self.time_key else None
        self.dots = settings.replace_dots or None
        self.log_key = settings.log_key or None
        self.no_log_key = f"log_key '{self.log_key}' is not in the record"  # one string for every such reject
        self.newline = settings.append_newline
        self.compress = compressor(settings.compression)
        self.max_record_bytes = settings.max_record_bytes
        self.text = TextPolicy(settings.invalid_utf8)
        self._invalid_reason = ("record has invalid UTF-8 (invalid_utf8 dead_letter)"
                                if settings.invalid_utf8 == "dead_letter" else None)
        self._random_key = _random_keys().__next__
        # the native fast path covers JSON or log_key payloads, nothing else
        self.fast = None
        if fastpath.AVAILABLE and self.data_keys is None and self.time_key is None and self.dots is None:
            self.fast = fastpath.Options(self.key_path, self.log_key, self.newline, settings.invalid_utf8)
        # the most bytes a partition key can take: 256 characters of up to 4 bytes
        self._max_key_bytes = max(4 * 256, len((self.fixed_key or "").encode()))

    def shape_chunk(self, data):
        """(chunk, ShapedBatch) for a whole msgpack chunk: the native fast path
        when the settings allow and it accepts the chunk, else decode_chunk + shape."""
        if self.fast is not None:
            columns = fastpath.convert(data, self.fast)
            if columns is not None:
                batch = self._shape_payloads(*columns)
                if not batch.rejected or self._keep_originals(data, batch, len(columns[0])):
                    return FastChunk(), batch
                # the Python decoder sees other events: the Python path (the reference) does it all
        chunk = DecodedChunk()
        return chunk, self.shape(iter_events(data, chunk))

    @staticmethod
    def _keep_originals(data, batch, count):
        """Packs the records of the fast path's rejects for their dead letters;
        False when the Python decoder does not see the same `count` events."""
        wanted = {index for index, _reason, _key, payload in batch.rejected if payload is None}
        if not wanted:  # rejects that keep their payload need nothing of the record
            return True
        probe = DecodedChunk()
        seen = 0
        for index, (_timestamp, record) in enumerate(iter_events(data, probe)):
            seen += 1
            if index in wanted:
                batch.originals[index] = pack_original(record)
        return not probe.rejected and not probe.error and seen == count

    def _shape_payloads(self, payloads, keys, statuses):
        """shape() for payloads the fast path made: compression, keys, size limit."""
        count = len(payloads)
        all_ok = statuses.count(fastpath.STATUS_OK) == count
        if all_ok and self.compress is not None:
            payloads = list(map(self.compress, payloads))  # no Python frame per record
        if all_ok and max(map(len, payloads), default=0) + self._max_key_bytes <= self.max_record_bytes:
            # the common case: nothing can be rejected, so no checks per record
            batch = ShapedBatch()
            if self.key_path is not None:
                batch.random_keys = keys.count(None)
                if batch.random_keys:
                    keys = [key if key is not None else self._random_key() for key in keys]
            elif self.fixed_key:
                keys = [self.fixed_key] * count
            else:
                keys = [self._random_key() for _ in range(count)]
            batch.entries = list(zip(payloads, keys, range(count)))
            return batch
        return self._shape_payloads_one_by_one(payloads, keys, statuses, compressed=all_ok)

    def _shape_payloads_one_by_one(self, payloads, keys, statuses, compressed=False):
        batch = ShapedBatch()
        add = self._add
        compress = self.compress
        has_path = self.key_path is not None
        for index, (data, key, status) in enumerate(zip(payloads, keys, statuses)):
            if status == fastpath.STATUS_NO_LOG_KEY:
                batch.rejected.append((index, self.no_log_key, None, None))
                continue
            if status & fastpath.STATUS_REPLACED:
                batch.invalid_utf8 += 1
                if self._invalid_reason:
                    batch.rejected.append((index, self._invalid_reason, None, None))
                    continue
            if compress is not None and not compressed:
                data = compress(data)
            add(batch, index, data, key if has_path else None)
        return batch

    def _add(self, batch, index, data, key):
        """The partition key's fallback and the record size limit, then the entry."""
        if key is None:
            if self.key_path is not None:
                batch.random_keys += 1
            key = self.fixed_key or self._random_key()
        size = len(data) + (len(key) if key.isascii() else len(key.encode()))
        if size > self.max_record_bytes:
            batch.rejected.append((index, f"record is {size} bytes with its key; "
                                          f"the limit is {self.max_record_bytes}", key, data))
        else:
            batch.entries.append((data, key, index))

    def partition_key(self, record):
        """The record's key from partition_key (a->b), or None when missing."""
        value = record
        for name in self.key_path:
            if type(value) is not dict:
                return None
            value = value.get(name)
        if type(value) is bytes:
            value = value.decode("utf-8", "replace")
        if type(value) is not str or not value:
            return None
        if not value.isascii():  # a key is text: invalid UTF-8 is replaced whatever invalid_utf8 says
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return value[:256]

    def payload(self, timestamp, record):
        """(the bytes a consumer receives for one record before compression,
        whether invalid UTF-8 or bin values were altered)."""
        altered = False
        if self.data_keys is not None:
            record = {k: v for k, v in record.items() if k in self.data_keys}
        if self.time_key is not None:
            record = dict(record)
            record[self.time_key] = self.format_time(timestamp)
        if self.dots is not None:
            record = replace_dots(record, self.dots)
        if self.log_key is not None:
            if self.log_key not in record:
                raise ShapeError(self.no_log_key)
            value = record[self.log_key]
            if type(value) is str:
                text, altered = self.text.text(value)
                data = text.encode()
            elif type(value) is bytes:  # raw, as it came: nothing altered
                data = value
            else:
                data, altered = _json_or_reject(self.text.json, value)
        else:
            data, altered = _json_or_reject(self.text.json, record)
        if altered and self._invalid_reason:
            raise InvalidTextError(self._invalid_reason)
        if self.newline:
            data += b"\n"
        return data, altered

    def shape(self, events):
        """Shapes every event of a chunk; never raises for one bad record."""
        batch = ShapedBatch()
        add = self._add
        payload = self.payload
        compress = self.compress
        for index, (timestamp, record) in enumerate(events):
            try:
                data, altered = payload(timestamp, record)
                if compress is not None:
                    data = compress(data)
            except Exception as exc:  # whatever a hostile record finds: a dead letter, never a failed flush
                batch.invalid_utf8 += type(exc) is InvalidTextError
                batch.rejected.append((index, _rejection(exc), None, None))
                batch.originals[index] = pack_original(record)
                continue
            batch.invalid_utf8 += altered
            add(batch, index, data, self.partition_key(record) if self.key_path is not None else None)
        return batch
