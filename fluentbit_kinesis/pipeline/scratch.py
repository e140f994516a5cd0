"""Large temporary buffers for the C code (the fast path's output and
records, a request body's bytes): each on an anonymous mapping of its own,
unmapped as soon as the buffer is dropped.

cffi takes them from malloc, and glibc maps a block that large itself, but on
freeing it raises its mmap threshold (and twice that, what every thread's
arena may keep free) to the block's size, process-wide: the fast path's
buffers, 6x and 7x a 2 MB chunk, had it at 14 MB, so later buffers came from
the arenas and stayed there, a few chunks' worth per thread. Smaller buffers,
which malloc keeps in its arenas anyway, still come from malloc.
"""
import mmap

MAPPED_FROM = 128 * 1024  # glibc's own mmap threshold before it moves: what malloc would map


def buffer(ffi, allocate, ctype, count, item_size=1):
    """A `ctype` ("uint8_t[]", "uint32_t[]") of `count` items, not cleared:
    mapped on its own when large, else from `allocate` (an ffi.new_allocator)."""
    size = count * item_size
    if size < MAPPED_FROM:
        return allocate(ctype, count)
    return ffi.from_buffer(ctype, mmap.mmap(-1, size))  # the cdata keeps the mapping alive
