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

    buffers = scratch.Buffers(ffi, allocate)
    with buffers as new:
        out = new("uint8_t[]", size)   # valid until the block ends
        buffers.wrote(out, length)     # what the C code wrote: those pages are memory now

A mapping's size is a power of two, and of the kept ones that fit, the next
buffer takes the one with the most bytes written before (its pages are
memory already), else the smallest: the fast path's output (a few MB
written) and its record table (a few hundred KB) take the same two mappings
chunk after chunk, rather than each writing the pages of another in turn as
chunk sizes waver (4.4 MB of them resident, not 2.2). Past KEPT_BYTES, the
least written go first.
"""
import mmap
import sys
import threading
from collections import deque

MAPPED_FROM = 128 * 1024  # glibc's own mmap threshold before it moves: what malloc would map
KEPT_BYTES = 64 * 1024 * 1024  # two chunks' buffers of 2 MB: 6x and 7x the chunk each

_kept = []  # mappings free for the next buffers
_written = {}  # id of a kept mapping -> the most bytes written to it
_lock = threading.Lock()
_returned = deque()  # (mapping, bytes written) of buffers `keep` gave out, no longer referred to


class Buffers:
    """Buffers that are not cleared: `ctype` ("uint8_t[]", "uint32_t[]") of
    `count` items, from `allocate` (an ffi.new_allocator) when small."""

    def __init__(self, ffi, allocate):
        self.ffi = ffi
        self.allocate = allocate
        self.mapped = []  # [cdata, mapping, bytes written]

    def __enter__(self):
        return self.new

    def new(self, ctype, count, item_size=1):
        size = count * item_size
        if size < MAPPED_FROM:
            return self.allocate(ctype, count)
        # a power of two: a chunk a little larger than the last still fits its mapping
        mapping, written = _take(size) or (mmap.mmap(-1, 1 << (size - 1).bit_length(), flags=mmap.MAP_PRIVATE), 0)
        cdata = self.ffi.from_buffer(ctype, mapping)  # as long as the mapping, at least `count`
        self.mapped.append([cdata, mapping, written])
        return cdata

    def wrote(self, cdata, length):
        """`length` bytes of `cdata` (from new) were written."""
        for entry in self.mapped:
            if entry[0] is cdata:
                entry[2] = max(entry[2], length)

    def keep(self, cdata, length):
        """The first `length` bytes of `cdata` (from new), written, as a buffer
        that outlives the block: the fast path's output becomes its EntryTable's
        data as it is, rather than a copy of megabytes in the thread's arena. Its
        mapping goes back to the kept ones once nothing refers to the buffer."""
        entry = next((entry for entry in self.mapped if entry[0] is cdata), None)
        if entry is None:  # small: from malloc, copied
            return self.ffi.buffer(cdata, length)[:]
        self.mapped.remove(entry)
        _cdata, mapping, written = entry
        written = max(written, length)
        release, give_back = self.ffi.release, _returned.append  # bound now: no global looked up later

        def returned(cdata):  # may run on any thread, in the middle of anything: no lock taken here
            release(cdata)
            give_back((mapping, written))
        return memoryview(self.ffi.buffer(self.ffi.gc(cdata, returned), length))

    def __exit__(self, *_exc):
        for cdata, mapping, written in self.mapped:
            self.ffi.release(cdata)
            _give_back(mapping, written)
        self.mapped.clear()


def _take(size):
    """(the kept mapping of at least `size` bytes with the most written, else the smallest,
    bytes written to it), or None."""
    with _lock:
        _take_returned()
        fits = [m for m in _kept if len(m) >= size]
        if not fits:
            return None
        mapping = max(fits, key=lambda m: (_written.get(id(m), 0), -len(m)))
        _kept.remove(mapping)
        return mapping, _written.pop(id(mapping), 0)


def _give_back(mapping, written):
    """Kept, unless KEPT_BYTES are kept already: then the mappings with the least
    written of those and this one are unmapped, until the rest fit."""
    with _lock:
        _take_returned()
        _keep(mapping, written)


def _take_returned():
    """Under the lock: the mappings of buffers `keep` gave out that are free again, kept."""
    while _returned:
        _keep(*_returned.popleft())


def _keep(mapping, written):
    """Under the lock (_give_back)."""
    _kept.append(mapping)
    _written[id(mapping)] = written
    while sum(map(len, _kept)) > KEPT_BYTES:
        least = min(reversed(_kept), key=lambda m: _written.get(id(m), 0))  # ties: the newest
        _kept.remove(least)
        _written.pop(id(least), None)
        least.close()  # unmapped: back to the system at once


_reused = threading.local()  # per thread: name -> the buffer `reusable` gave last


def _held(holder, name):
    """(holder[name] or None, its reference count as read here)."""
    kept = holder.get(name)
    return kept, sys.getrefcount(kept)


# the count _held reads for an object only `holder` keeps, measured rather than assumed:
# how getrefcount counts a function's own references differs between Python versions
_UNSHARED = _held({"probe": object()}, "probe")[1]


def reusable(allocate, name, size):
    """A uint8_t buffer of at least `size` bytes that outlives the call (it
    becomes an EntryTable's data): this thread's last one of that name when
    nothing refers to it any more (its table is gone), else a new one. A
    reused buffer's pages are memory already; a fresh one of a chunk's size
    faults a page at a time, and glibc may unmap it again when freed."""
    kept, references = _held(_reused.__dict__, name)
    if kept is not None and len(kept) >= size and references == _UNSHARED:  # a table's view of it adds one
        return kept
    kept = _reused.__dict__[name] = allocate("uint8_t[]", 1 << max(12, (size - 1).bit_length()))
    return kept
