"""The native fast path: a whole chunk -> one JSON payload per record in C
(csrc/fastjson.c), with no Python object per field.

`chunk_payloads` returns None whenever the C code declines (anything unusual:
malformed data, non-map bodies, ext values, non-string or duplicate keys, deep
nesting; with invalid_utf8 base64, bin values and invalid UTF-8) or the module
is not built; the caller then uses the Python path (shaping.Shaper.shape),
which stays the reference.

A record's status is STATUS_OK, STATUS_NO_LOG_KEY (nothing written), or has
the STATUS_REPLACED bit when invalid UTF-8 became U+FFFD: all zeros, the
usual case, costs the caller one list.count.

FastShaper turns those columns into a ShapedChunk, the same result the
Python path gives.
"""
from . import scratch
from .compression import compress_all
from .entry_kernels_native import table_columns
from .entry_table import EntryTable
from .events import DecodedChunk, iter_events
from .keys import MAX_KEY_CHARS
from .rejects import pack_original
from .shaped_chunk import ShapedChunk

try:
    from .._fastjson import ffi, lib
except ImportError:  # not compiled (e.g. a source tree without `make`): Python path only
    ffi = lib = None

AVAILABLE = lib is not None
STATUS_OK = 0
STATUS_NO_LOG_KEY = 1
STATUS_REPLACED = 2  # a bit
_APPEND_NEWLINE, _BASE64 = 1, 2  # fj_convert's flags
_RECORD_FIELDS = 5  # uint32s per record: payload offset, length, key offset, length, status

if AVAILABLE:
    _alloc = ffi.new_allocator(should_clear_after_alloc=False)


class Options:
    """The C call's settings, converted once per Shaper."""

    def __init__(self, key_path, log_key, append_newline, invalid_utf8="replace"):
        names = [name.encode("utf-8", "surrogateescape") for name in key_path or ()]
        self.key_depth = len(names) if key_path is not None else -1
        self.key_names = ffi.new("uint8_t[]", b"".join(names) or b"\0")
        self.key_lens = ffi.new("uint32_t[]", [len(n) for n in names] or [0])
        log = (log_key or "").encode("utf-8", "surrogateescape")
        self.log_key = ffi.new("uint8_t[]", log or b"\0")
        self.log_key_len = len(log) if log_key is not None else -1
        # dead_letter: the C code replaces and flags the record, Python dead-letters it
        self.flags = (_APPEND_NEWLINE if append_newline else 0) | (_BASE64 if invalid_utf8 == "base64" else 0)


def chunk_payloads(data, key_path=None, log_key=None, append_newline=False, invalid_utf8="replace",
                   options=None):
    """[(payload bytes, partition key str or None, status)] for every record
    of the chunk, or None when the fast path declines."""
    if not AVAILABLE:
        return None
    if options is None:
        options = Options(key_path, log_key, append_newline, invalid_utf8)
    columns = convert(data, options)
    return None if columns is None else list(zip(*columns))


def convert(data, options, table_of=None):
    """chunk_payloads as three lists (payloads, keys, statuses), or None.
    `table_of(written, fields, count, chunk, keep)`: called first, with the output,
    the record table, the chunk's bytes and keep() -> the output as a buffer that
    outlives this call (no copy); what it returns unless None (then the lists)."""
    if not AVAILABLE:
        return None
    size = len(data)
    source = ffi.from_buffer("uint8_t[]", data)
    # worst case: 6 output bytes per input byte (a control character escaped)
    out_cap = 6 * size + 64
    records_cap = size // 3 + 1  # an event takes at least 3 bytes
    buffers = scratch.Buffers(ffi, _alloc)
    with buffers as new:
        try:  # address space only: the pages the C code does not write are never touched
            out = new("uint8_t[]", out_cap)
            records = new("uint32_t[]", records_cap * _RECORD_FIELDS, 4)
        except (MemoryError, OSError):  # e.g. strict overcommit and a huge chunk: Python needs less
            return None
        used = ffi.new("size_t[2]")
        rc = lib.fj_convert(source, size, options.key_names, options.key_lens, options.key_depth,
                            options.log_key, options.log_key_len, options.flags,
                            out, out_cap, records, records_cap, used, used + 1)
        buffers.wrote(out, used[0])
        buffers.wrote(records, used[1] * _RECORD_FIELDS * 4)
        if rc != 0:
            return None
        written = ffi.buffer(out, used[0])  # sliced as it is: no copy of the whole
        # read in place: as a list they would be five Python ints per record (1.4 MB a chunk)
        with memoryview(ffi.buffer(records, used[1] * _RECORD_FIELDS * 4)).cast("I") as fields:
            count = used[1]
            if table_of is not None:
                made = table_of(written, fields, count, ffi.buffer(source, size),
                                lambda: buffers.keep(out, used[0]))
                if made is not None:
                    return made
            keys = _keys(source, size, fields, options.key_depth, count)
            payloads = [written[at:at + length] for at, length in zip(fields[0::5], fields[1::5])]
            del written
            statuses = fields[4::5].tolist()
    return payloads, keys, statuses


def _keys(source, size, fields, key_depth, count):
    """Each record's partition key, from the chunk (None: missing or not asked for)."""
    if key_depth < 0:
        return [None] * count
    chunk = ffi.buffer(source, size)  # slices are bytes, whatever `data` is
    raw_keys = [chunk[at:at + length] for at, length in zip(fields[2::5], fields[3::5])]
    # the same pod name again and again: decode each once; b"" (missing) -> None
    text = {raw: raw.decode("utf-8", "replace")[:MAX_KEY_CHARS] for raw in set(raw_keys) if raw}
    return [text.get(raw) for raw in raw_keys]


class FastShaper:
    """Shaper.shape_chunk by the native path: the payloads come from C; the
    compression, partition keys and size limit are the Shaper's own."""

    def __init__(self, shaper, settings):
        self.shaper = shaper
        self.options = Options(settings.partition_key, shaper.log_key, shaper.newline, settings.invalid_utf8)

    def shape_chunk(self, data):
        """A ShapedChunk, or None when the C code declines the chunk or the
        Python decoder would see other events (the Python path then does it all)."""
        compress = self.shaper.compress
        tables = self.shaper.tables and (compress is None or hasattr(compress, "table"))
        table_of = self._table if tables else None
        columns = convert(data, self.options, table_of)
        if columns is None:
            return None
        if isinstance(columns, ShapedChunk):
            return columns
        shaped = self._shape_payloads(*columns)
        shaped.path = "fast"
        if shaped.rejected and not _keep_originals(data, shaped, len(columns[0])):
            return None
        return shaped

    def _table(self, written, fields, count, chunk, keep):
        """A ShapedChunk whose entries are an EntryTable made in C from the
        converter's output (no object per record), when every record converted
        cleanly and fits, and its key is whole UTF-8; else None."""
        shaper, keys = self.shaper, self.shaper.keys
        flags = bytearray(count) if shaper.flag_keyless else None
        pool = keys.pool_for(count)
        columns = table_columns(fields, count, chunk if keys.path is not None else None, pool,
                                MAX_KEY_CHARS, flags)  # whole: no key to cut
        if columns is None:
            return None
        data_at, data_len, key_bytes, key_at, key_len, sizes, longest, made_up = columns
        if shaper.compress is not None:  # one frame per record, in C
            framed = shaper.compress.table(written, data_at, data_len, sizes)
            if framed is None:
                return None
            data, longest = framed
        if longest + keys.max_bytes > shaper.max_record_bytes:
            return None
        if shaper.compress is None:
            # the C output itself, not a copy: taken only now that the table is sure (until then
            # `written` may still be read as the lists' payloads)
            data = keep()
        shaped = ShapedChunk(path="fast", random_keys=made_up)
        shaped.entries = EntryTable.from_columns(data, data_at, data_len, key_bytes, key_at, key_len, sizes)
        if flags is not None and 1 in flags:
            shaped.entries.keyless = flags
        if keys.path is None or made_up == count:  # every key the pool's next: their shards are known per pool
            shaped.entries.pool = pool
        return shaped

    def _shape_payloads(self, payloads, keys, statuses):
        """Compression, keys, size limit."""
        shaper = self.shaper
        count = len(payloads)
        all_ok = statuses.count(STATUS_OK) == count
        if all_ok and shaper.compress is not None:
            payloads = compress_all(shaper.compress, payloads)  # no Python frame per record
        if all_ok and max(map(len, payloads), default=0) + shaper.keys.max_bytes <= shaper.max_record_bytes:
            # the common case: nothing can be rejected, so no checks per record
            shaped = ShapedChunk()
            keys, shaped.random_keys = shaper.keys.for_all(keys, count)
            shaped.entries = list(zip(payloads, keys, range(count)))
            return shaped
        return self._shape_one_by_one(payloads, keys, statuses, compressed=all_ok)

    def _shape_one_by_one(self, payloads, keys, statuses, compressed):
        shaper = self.shaper
        shaped = ShapedChunk()
        add = shaper.add
        compress = None if compressed else shaper.compress
        has_path = shaper.keys.path is not None
        for index, (data, key, status) in enumerate(zip(payloads, keys, statuses)):
            if status == STATUS_NO_LOG_KEY:
                shaped.rejected.append((index, shaper.no_log_key, None, None))
                continue
            if status & STATUS_REPLACED:
                shaped.invalid_utf8 += 1
                if shaper.invalid_reason:
                    shaped.rejected.append((index, shaper.invalid_reason, None, None))
                    continue
            if compress is not None:
                data = compress(data)
            add(shaped, index, data, key if has_path else None)
        return shaped


def _keep_originals(data, shaped, count):
    """Packs the records of the fast path's rejects for their dead letters;
    False when the Python decoder does not see the same `count` events."""
    wanted = {index for index, _reason, _key, payload in shaped.rejected if payload is None}
    if not wanted:  # rejects that keep their payload need nothing of the record
        return True
    probe = DecodedChunk()
    seen = 0
    for index, (_timestamp, record) in enumerate(iter_events(data, probe)):
        seen += 1
        if index in wanted:
            shaped.originals[index] = pack_original(record)
    return not probe.rejected and not probe.error and seen == count
