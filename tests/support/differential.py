"""The differential oracle of `make fuzz` and of tests/pipeline/test_fuzz_corpus.py:
one input (an options byte, then a msgpack chunk) through the native fast
path and through the Python path (events.decode_chunk + Shaper.shape), which
must agree byte for byte whenever the fast path accepts the chunk; neither
may raise. An input is the same file for the C fuzzer (tests/fuzz/
fuzz_fastjson.c reads the options byte the same way) and for this one.

The options byte: bits 0-1 partition_key (0 none, 1 kubernetes->pod_name,
2 log, 3 none), bit 2 log_key log, bit 3 append_newline, bits 4-5
invalid_utf8 (0 replace, 1 base64, 2 dead_letter, 3 replace), bit 6 zlib,
bit 7 max_record_bytes 1024. (Options only the Python path handles, such as
time_key, go through `python_only_settings`.)
"""
import collections
from pathlib import Path

from fluentbit_kinesis import config

from fluentbit_kinesis.pipeline import fastpath
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.pipeline.events import decode_chunk
from fluentbit_kinesis.pipeline.fastformat import MAX_PLANS
from fluentbit_kinesis.pipeline.formats import FORMATS
from fluentbit_kinesis.pipeline.keys import RandomKey
from fluentbit_kinesis.pipeline.shaping import Shaper

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus"
KEY_PATHS = (None, ["kubernetes", "pod_name"], ["log"], None)
INVALID_UTF8 = ("replace", "base64", "dead_letter", "replace")



class Divergence(AssertionError):
    """The fast path and the Python path made different records."""


def settings_for(options_byte, **extra):
    values = dict(partition_key=KEY_PATHS[options_byte & 3], log_key="log" if options_byte & 4 else None,
                  append_newline=bool(options_byte & 8), invalid_utf8=INVALID_UTF8[(options_byte >> 4) & 3],
                  compression="zlib" if options_byte & 64 else "none",
                  max_record_bytes=1024 if options_byte & 128 else 1024 * 1024)
    values.update(extra)
    return config.Settings(**values)


def python_only_settings(options_byte):
    """The same options plus one the fast path does not cover (time_key, replace_dots, data_keys)."""
    extra = [dict(time_key="time", time_key_format="%Y-%m-%dT%H:%M:%S.%L"), dict(replace_dots="_"),
             dict(data_keys=["log", "kubernetes", "a"])][options_byte % 3]
    return settings_for(options_byte, **extra)


def split(blob):
    """(options byte, chunk) of a fuzz input."""
    return (blob[0], bytes(blob[1:])) if blob else (0, b"")


def python_path(shaper, data):
    chunk = decode_chunk(data)
    return chunk, shaper.shape(chunk.events)


def _comparable(batch):
    """A ShapedChunk without what is random by design (made-up partition keys)."""
    entries = [(payload, None if type(key) is RandomKey else key, index) for payload, key, index in batch.entries]
    rejected = [(index, reason, None if type(key) is RandomKey else key, payload)
                for index, reason, key, payload in batch.rejected]
    return entries, rejected, batch.random_keys, batch.invalid_utf8


_shapers = {}
format_counts = collections.Counter()  # compare_format's outcomes, for the fuzzer's stats
_format_shapers = {}
MAX_FORMAT_SHAPERS = 640  # 32 option sets x 9 formats, native and Python: ~0.5 MB each


def shaper_for(settings, python_only=False, tables=False):
    """One Shaper per set of options (making one draws 4096 random keys);
    python_only: one without the native path; tables: one whose fast path
    may give an EntryTable (plain records going to delivery as they are). field_format's have a cache of
    their own, bounded (their plans and normalizers add up)."""
    key = (repr(settings), python_only, tables)
    shapers = _format_shapers if settings.field_format != "none" else _shapers
    if key not in shapers:
        if len(shapers) >= MAX_FORMAT_SHAPERS:
            shapers.clear()
        shapers[key] = Shaper(settings, tables=tables)
        if python_only:
            shapers[key].fast = None
    return shapers[key]


def compare(settings, data):
    """Checks one chunk under one set of options. Returns True when the fast
    path accepted it (and agreed), False when it declined. Raises Divergence,
    or whatever escapes either path."""
    shaper = shaper_for(settings)
    chunk, slow = python_path(shaper, data)
    if shaper.fast is None:
        return False
    columns = fastpath.convert(data, shaper.fast.options)
    if columns is None:
        return False
    # the fast path accepts only what Python decodes without a rejection
    if chunk.error or chunk.rejected:
        raise Divergence(f"fast path accepted a chunk Python rejects: {chunk.error or chunk.rejected[0].reason}")
    if len(columns[0]) != len(chunk.events):
        raise Divergence(f"{len(columns[0])} records from the fast path, {len(chunk.events)} from Python")
    fast = shaper.fast._shape_payloads(*columns)
    if _comparable(fast) != _comparable(slow):
        for name, f, s in zip(("entries", "rejected", "random_keys", "invalid_utf8"),
                              _comparable(fast), _comparable(slow)):
            if f != s:
                raise Divergence(f"{name} differ: fast {f!r:.300} python {s!r:.300}")
    _compare_table(shaper_for(settings, tables=True), data, slow)
    return True


def _compare_table(shaper, data, slow):
    """The fast path's EntryTable, when it makes one, holds the entries the
    Python path made (made-up keys aside: each shaper draws its own)."""
    shaped = shaper.fast.shape_chunk(data)
    if shaped is None or not isinstance(shaped.entries, EntryTable):
        return
    format_counts["tables"] += 1
    if slow.rejected or slow.random_keys != shaped.random_keys or len(shaped.entries) != len(slow.entries):
        raise Divergence(f"an EntryTable of {len(shaped.entries)} entries ({shaped.random_keys} made-up keys), "
                         f"Python: {len(slow.entries)} ({slow.random_keys}), {len(slow.rejected)} rejected")
    for (data_, key, hash_key, event), (payload, slow_key, index) in zip(shaped.entries, slow.entries):
        made_up = type(slow_key) is RandomKey
        if (data_, None if made_up else key, hash_key, event) != (payload, None if made_up else slow_key, None, index):
            raise Divergence(f"EntryTable entry {event!r} {data_!r:.200} {key!r:.80}, Python {index} {payload!r:.200}")


def _format_outcome(shaped):
    entries, rejected, random_keys, invalid_utf8 = _comparable(shaped)
    return entries, rejected, random_keys, invalid_utf8, shaped.not_normalized, sorted(shaped.originals)


def compare_format(settings, data):
    """field_format (pipeline/fastformat.py) against the Python path, twice
    (the first call makes the plans of new shapes, the second runs them).
    Returns True when the native path took the chunk the second time."""
    shaper = shaper_for(settings)
    if shaper.fast is None:
        return False
    if len(shaper.fast.table.known) >= MAX_PLANS:  # full: a fresh table, so new shapes still get plans
        shaper = _format_shapers[(repr(settings), False)] = Shaper(settings)
    python = shaper_for(settings, python_only=True)
    expected = _format_outcome(python.shape_chunk(data))
    accepted = False
    for _ in range(2):
        native = shaper.shape_chunk(data)  # the Python path's when the native one declines
        accepted = native.path != "python"
        got = _format_outcome(native)
        if got != expected:
            for name, f, s in zip(("entries", "rejected", "random_keys", "invalid_utf8", "not_normalized",
                                   "originals"), got, expected):
                if f != s:
                    raise Divergence(f"field_format {settings.field_format}: {name} differ: "
                                     f"native {f!r:.300} python {s!r:.300}")
    return accepted


def check_input(blob):
    """The fuzz oracle for one input: the fast path against the Python path
    under the input's options, then the Python-only options, then
    field_format natively against the Python path (the format the chunk's
    length picks); no exception."""
    options_byte, data = split(blob)
    accepted = compare(settings_for(options_byte), data)
    python_path(shaper_for(python_only_settings(options_byte)), data)
    field_format = FORMATS[len(data) % len(FORMATS)]
    # partition key, newline, invalid_utf8 (log_key is the Python path's; compression, size: as without)
    native = compare_format(settings_for(options_byte & 0b00111011, field_format=field_format), data)
    format_counts["field_format native" if native else "field_format declined"] += 1
    return accepted
