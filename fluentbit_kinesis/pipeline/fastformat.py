"""field_format on the native fast path: fj_format (csrc/fastjson_format*.c)
writes each record's normalized JSON by the plan of its shape
(formats/plans.py). The records it leaves (a shape without a plan yet, a
value a plan cannot take) are shaped here by the Python path, the
reference, and a shape's first such record gives its plan. The C code
declines a chunk on what fj_convert declines; the Python path then does it
all."""
import struct

from .events import DecodedChunk, iter_events
from .fastpath import AVAILABLE, STATUS_OK, FastShaper, Options, ffi, lib
from .formats.plans import Plans
from .rejects import pack_original
from .shaped_chunk import ShapedChunk

STATUS_PYTHON = 4
STATUS_UNKNOWN = 8
MAX_PLANS = 256  # past it, a new shape stays the Python path's
# chunks left to the Python path alone after one that was mostly shapes without plans, the table full
# (the native pass would be spent for little); then the native path is tried again
SKIP_CHUNKS = 16
_RECORD_FIELDS = 5

if AVAILABLE:
    _alloc = ffi.new_allocator(should_clear_after_alloc=False)


class PlanTable:
    """The plans as fj_format reads them: signatures with their programs.
    Flushes may run on several threads: each change replaces the whole
    state in one assignment, and a call keeps the arrays it started with."""

    def __init__(self, target):
        self.plans = Plans(target)
        self.names = ffi.new("uint8_t[]", self.plans.names)
        self.names_size = len(self.plans.names)
        self.known = {}  # signature -> program
        self._state = (b"", (), ())  # blob, offsets, hashes
        self._arrays = None  # (the state they were made of, the arrays)

    def wants(self, signature):
        """Whether a plan for this signature would be kept (making one costs two normalizations)."""
        return signature not in self.known and len(self.known) < MAX_PLANS

    def add(self, signature, sig_hash, program):
        if not self.wants(signature):
            return
        blob, offsets, hashes = self._state
        entry = struct.pack("=I", len(signature)) + signature + program
        self._state = (blob + entry, offsets + (len(blob),), hashes + (sig_hash,))
        self.known[signature] = program

    def arrays(self):
        state, made = self._state, self._arrays
        if made is None or made[0] is not state:
            blob, offsets, hashes = state
            made = self._arrays = (state, (ffi.new("uint8_t[]", blob or b"\0"), ffi.new("uint32_t[]", offsets or [0]),
                                           ffi.new("uint64_t[]", hashes or [0]), len(offsets)))
        return made[1]


def convert(data, options, table):
    """(payloads, keys, statuses, hashes) by fj_format, or None when it declines."""
    size = len(data)
    source = ffi.from_buffer("uint8_t[]", data)
    records_cap = size // 3 + 1
    used = ffi.new("size_t[2]")
    plans, offsets, hashes, count = table.arrays()
    for out_cap in (8 * size + 65536, 40 * size + 65536):
        try:  # address space only: the pages the C code does not write are never touched
            out = _alloc("uint8_t[]", out_cap)
            records = _alloc("uint32_t[]", records_cap * _RECORD_FIELDS)
        except MemoryError:
            return None
        rc = lib.fj_format(source, size, table.names, table.names_size, plans, offsets, hashes, count,
                           options.key_names, options.key_lens, options.key_depth, options.flags,
                           out, out_cap, records, records_cap, used, used + 1)
        if rc != -2:  # FJ_NEED_ROOM: a bigger buffer once
            break
    if rc != 0:
        return None
    blob = ffi.buffer(out, used[0])[:]
    fields = memoryview(ffi.buffer(records, used[1] * _RECORD_FIELDS * 4)).cast("I").tolist()
    payloads = [blob[at:at + length] for at, length in zip(fields[0::5], fields[1::5])]
    statuses = fields[4::5]
    low, high = fields[2::5], fields[3::5]
    if options.key_depth < 0:
        keys = [None] * len(payloads)
    else:
        chunk = ffi.buffer(source, size)
        raw_keys = [chunk[at:at + length] if not status else b""
                    for at, length, status in zip(low, high, statuses)]
        text = {raw: raw.decode("utf-8", "replace")[:256] for raw in set(raw_keys) if raw}
        keys = [text.get(raw) for raw in raw_keys]
    hashes = {index: low[index] | high[index] << 32 for index, status in enumerate(statuses)
              if status == STATUS_UNKNOWN}
    return payloads, keys, statuses, hashes


class FormatShaper:
    """Shaper.shape_chunk with field_format by the native path."""

    def __init__(self, shaper, settings):
        self.shaper = shaper
        self.fast = FastShaper(shaper, settings)  # compression, keys and size limit of all-native chunks
        self.options = Options(settings.partition_key, None, shaper.newline, settings.invalid_utf8)
        self.table = PlanTable(shaper.normalize.target)
        self.skip = 0

    def shape_chunk(self, data):
        if self.skip:  # records of shapes without plans, and the table full: the Python path alone
            self.skip -= 1
            return None
        columns = convert(data, self.options, self.table)
        if columns is None:
            return None
        payloads, keys, statuses, hashes = columns
        native = statuses.count(STATUS_OK)
        if native == len(statuses):
            shaped = self.fast._shape_payloads(payloads, keys, statuses)
            shaped.path = "fast"
            return shaped
        shaped = self._mixed(data, payloads, keys, statuses, hashes)
        if shaped is not None:
            shaped.path = "mixed"  # some records natively, the others by the Python path
        if 2 * native < len(statuses) and len(self.table.known) >= MAX_PLANS:
            self.skip = SKIP_CHUNKS
        return shaped

    def _mixed(self, data, payloads, keys, statuses, hashes):
        """Native payloads and the Python path's records, in the chunk's order."""
        shaper = self.shaper
        shaped = ShapedChunk()
        decoded = DecodedChunk()
        compress = shaper.compress
        key_of = shaper.keys.of if shaper.keys.path is not None else None
        seen = 0
        for index, (timestamp, record) in enumerate(iter_events(data, decoded)):
            seen += 1
            if index >= len(statuses):
                return None
            status = statuses[index]
            if status == STATUS_OK:
                payload = payloads[index]
                shaper.add(shaped, index, compress(payload) if compress is not None else payload,
                           keys[index] if key_of is not None else None)
                continue
            expected = self._python_record(shaped, index, timestamp, record, key_of)
            if status == STATUS_UNKNOWN and expected is not None and self.table.wants(payloads[index]):
                self.table.add(payloads[index], hashes[index], self.table.plans.plan(timestamp, record, expected))
        if decoded.rejected or decoded.error or seen != len(statuses):
            return None  # the Python decoder sees other events: the Python path does it all
        return shaped

    def _python_record(self, shaped, index, timestamp, record, key_of):
        """One record by the Python path (as Shaper.shape); its JSON before
        compression and newline when it was normalized and nothing altered."""
        shaper = self.shaper
        try:
            data, altered, normalized = shaper.formatted(timestamp, record)
            shaped.not_normalized += not normalized
            expected = data[:-1] if shaper.newline else data
            if shaper.compress is not None:
                data = shaper.compress(data)
        except Exception as exc:  # as Shaper.shape: a dead letter, never a failed flush
            shaped.invalid_utf8 += type(exc).__name__ == "InvalidTextError"
            shaped.rejected.append((index, _rejection(exc), None, None))
            shaped.originals[index] = pack_original(record)
            return None
        shaped.invalid_utf8 += altered
        shaper.add(shaped, index, data, key_of(record) if key_of is not None else None)
        return expected if normalized and not altered else None


def _rejection(exc):
    from .shaping import _rejection as reason  # shaping imports this module
    return reason(exc)
