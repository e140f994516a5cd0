"""Large temporary buffers for the C code (the fast path's output and
records, a request body's bytes): anonymous mappings of their own, a few kept
for the next chunk.

From malloc (cffi's allocator), glibc maps a block that large itself, but on
freeing it raises its mmap threshold (and twice that, what each thread's
arena may keep free) to the block's size, process-wide: the fast path's
buffers, 6x and 7x a 2 MB chunk, had it at 14 MB, so later chunk-sized
buffers came from the arenas and stayed there, a few chunks' worth per
thread (Fluent Bit's peak RSS on versus_c plain: 146 MB). Mappings of our own
leave the threshold alone; a few are kept, up to KEPT_BYTES of address space
(only the pages written are memory, about a chunk's worth), because a fresh
mapping costs a page fault per 4 KiB written. Smaller buffers, which malloc
keeps in its arenas anyway, still come from malloc.

    with scratch.Buffers(ffi, allocate) as new:
        out = new("uint8_t[]", size)   # valid until the block ends
"""
import mmap
import threading

MAPPED_FROM = 128 * 1024  # glibc's own mmap threshold before it moves: what malloc would map
KEPT_BYTES = 64 * 1024 * 1024  # two chunks' buffers of 2 MB: 6x and 7x the chunk each

_kept = []  # mappings free for the next buffers
_lock = threading.Lock()


class Buffers:
    """Buffers that are not cleared: `ctype` ("uint8_t[]", "uint32_t[]") of
    `count` items, from `allocate` (an ffi.new_allocator) when small."""

    def __init__(self, ffi, allocate):
        self.ffi = ffi
        self.allocate = allocate
        self.mapped = []  # (cdata, mapping)

    def __enter__(self):
        return self.new

    def new(self, ctype, count, item_size=1):
        size = count * item_size
        if size < MAPPED_FROM:
            return self.allocate(ctype, count)
        mapping = _take(size) or mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        cdata = self.ffi.from_buffer(ctype, mapping)  # as long as the mapping, at least `count`
        self.mapped.append((cdata, mapping))
        return cdata

    def __exit__(self, *_exc):
        for cdata, mapping in self.mapped:
            self.ffi.release(cdata)
            _give_back(mapping)
        self.mapped.clear()


def _take(size):
    """The smallest kept mapping of at least `size` bytes, or None."""
    with _lock:
        fits = [m for m in _kept if len(m) >= size]
        if not fits:
            return None
        mapping = min(fits, key=len)
        _kept.remove(mapping)
        return mapping


def _give_back(mapping):
    with _lock:
        if sum(map(len, _kept)) + len(mapping) <= KEPT_BYTES:
            _kept.append(mapping)
            return
    mapping.close()  # unmapped: back to the system at once
