"""Record -> payload bytes and partition key, and the one place a chunk's
path is chosen: the native fast path (fastpath.py; with field_format,
fastformat.py) when the settings allow and it accepts the chunk, else the
Python path here, the reference. Both give a ShapedChunk.

Order of the steps (as the AWS Go plugin, with its known bugs fixed):
partition key from the original record; data_keys filter; time_key added
(after the filter, so the filter cannot remove it); replace_dots;
field_format (formats/: the record in a schema's names; one that cannot be
normalized is sent as it is, counted); log_key or JSON; append_newline;
compression; size check.
"""
import struct
import time

import orjson

from . import fastpath
from .compression import compressor
from .events import event_seconds, iter_events
from .keys import PartitionKeys
from .rejects import pack_original
from .shaped_chunk import ShapedChunk
from .text import JSON_OPTIONS, TextPolicy, no_bin_default


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


class Shaper:
    def __init__(self, settings, tables=False):
        self.keys = PartitionKeys(settings)
        self.data_keys = frozenset(settings.data_keys) if settings.data_keys else None
        self.time_key = settings.time_key or None
        self.format_time = TimeFormatter(settings.time_key_format) if self.time_key else None
        self.dots = settings.replace_dots or None
        self.log_key = settings.log_key or None
        self.no_log_key = f"log_key '{self.log_key}' is not in the record"  # one string for every such reject
        self.newline = settings.append_newline
        self.compress = compressor(settings.compression)
        self.tables = tables  # entries go to delivery as they are: the fast path may give an EntryTable
        # ... whose made-up keys are flagged (EntryTable.keyless), for aggregation to replace
        self.flag_keyless = tables and getattr(settings, "aggregation", False) and not self.keys.fixed
        self.max_record_bytes = settings.max_record_bytes
        self.text = TextPolicy(settings.invalid_utf8)
        self.invalid_reason = ("record has invalid UTF-8 (invalid_utf8 dead_letter)"
                               if settings.invalid_utf8 == "dead_letter" else None)
        field_format = getattr(settings, "field_format", "none")
        self.normalize = None
        if field_format not in (None, "none"):  # its tables (~0.5 MB) are loaded only when configured
            from .formats import NotNormalized, Normalizer
            self.normalize, self.normalize_error = Normalizer(field_format), NotNormalized
        self.prepares = self.data_keys is not None or self.time_key is not None or self.dots is not None
        # JSON of the whole record in one orjson call when nothing else applies (bin values: encode())
        self.json_only = self.log_key is None and not self.newline
        # the native fast path covers JSON or log_key payloads, nothing else
        self.fast = None
        if (fastpath.AVAILABLE and self.data_keys is None and self.time_key is None and self.dots is None
                and self.normalize is None):
            self.fast = fastpath.FastShaper(self, settings)
        elif (fastpath.AVAILABLE and self.normalize is not None and not self.prepares
              and self.log_key is None):  # field_format natively (fastformat.py), per record shape
            from . import fastformat
            self.fast = fastformat.FormatShaper(self, settings)

    def shape_chunk(self, data):
        """The ShapedChunk of a whole msgpack chunk; never raises."""
        if self.fast is not None:
            shaped = self.fast.shape_chunk(data)
            if shaped is not None:
                return shaped
        shaped = ShapedChunk()
        return self.shape(iter_events(data, shaped.decoded), shaped)

    def add(self, shaped, index, data, key):
        """The partition key's fallback and the record size limit, then the entry."""
        if key is None:
            if self.keys.path is not None:
                shaped.random_keys += 1
            key = self.keys.fallback()
        size = len(data) + (len(key) if key.isascii() else len(key.encode()))
        if size > self.max_record_bytes:
            shaped.rejected.append((index, f"record is {size} bytes with its key; "
                                           f"the limit is {self.max_record_bytes}", key, data))
        else:
            shaped.entries.append((data, key, index))

    def payload(self, timestamp, record):
        """(the bytes a consumer receives for one record before compression,
        whether invalid UTF-8 or bin values were altered)."""
        return self.encode(self.prepare(timestamp, record))

    def prepare(self, timestamp, record):
        """data_keys, time_key and replace_dots applied."""
        if self.data_keys is not None:
            record = {k: v for k, v in record.items() if k in self.data_keys}
        if self.time_key is not None:
            record = dict(record)
            record[self.time_key] = self.format_time(timestamp)
        if self.dots is not None:
            record = replace_dots(record, self.dots)
        return record

    def formatted(self, timestamp, record):
        """payload() with field_format: (bytes, altered, whether it was normalized);
        a record that cannot be normalized is sent as it is."""
        if self.prepares:
            record = self.prepare(timestamp, record)
        try:
            record = self.normalize(timestamp, record)
            normalized = True
        except self.normalize_error:
            normalized = False
        if self.json_only:
            try:
                return orjson.dumps(record, default=no_bin_default, option=JSON_OPTIONS), False, normalized
            except orjson.JSONEncodeError:
                pass  # bin values or invalid UTF-8: as invalid_utf8 says
        return (*self.encode(record), normalized)

    def encode(self, record):
        """The record (or its log_key) as bytes: (bytes, altered)."""
        altered = False
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
        if altered and self.invalid_reason:
            raise InvalidTextError(self.invalid_reason)
        if self.newline:
            data += b"\n"
        return data, altered

    def shape(self, events, shaped=None):
        """The Python path: shapes every (timestamp, record) event into
        `shaped` (a new ShapedChunk by default); never raises for one bad record."""
        shaped = ShapedChunk() if shaped is None else shaped
        add = self.add
        payload = self.payload
        compress = self.compress
        key_of = self.keys.of if self.keys.path is not None else None
        formatted = self.formatted if self.normalize is not None else None
        for index, (timestamp, record) in enumerate(events):
            try:
                if formatted is None:
                    data, altered = payload(timestamp, record)
                else:
                    data, altered, normalized = formatted(timestamp, record)
                    shaped.not_normalized += not normalized
                if compress is not None:
                    data = compress(data)
            except Exception as exc:  # whatever a hostile record finds: a dead letter, never a failed flush
                shaped.invalid_utf8 += type(exc) is InvalidTextError
                shaped.rejected.append((index, _rejection(exc), None, None))
                shaped.originals[index] = pack_original(record)
                continue
            shaped.invalid_utf8 += altered
            add(shaped, index, data, key_of(record) if key_of is not None else None)
        return shaped
