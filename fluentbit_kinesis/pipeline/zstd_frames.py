"""`compression zstd` over the fast path's EntryTable in C
(csrc/fastjson_frames.c): one frame per record, the frames of
compression.py's compress(), byte for byte, with no Python object per record.

The codec is python-zstandard's own libzstd: its cffi module exposes
ZSTD_compressCCtx, whose address goes to the C loop with a context of this
thread's (a context must not serve two threads at once; workers > 1 flush at
once). Level 3 and the record's size known: the parameters compress() uses.
`frames` returns None (the caller then takes the tuple path) when the module,
that cffi module or a frame is not there.
"""
import threading

from . import scratch

try:
    from .._fastjson import ffi, lib
except ImportError:  # not compiled: the tuple path compresses
    ffi = lib = None

LEVEL = 3  # compression.py's ZstdCompressor(level=3)
_local = threading.local()  # this thread's codec context and the struct naming it

if lib is not None:
    _alloc = ffi.new_allocator(should_clear_after_alloc=False)


def _codec():
    """python-zstandard's cffi module (ffi, lib), or None."""
    try:
        from zstandard._cffi import ffi as zstd_ffi, lib as zstd_lib
    except ImportError:  # pragma: no cover - the wheels ship it; without it the tuple path compresses
        return None
    return zstd_ffi, zstd_lib


def _framer():
    """This thread's struct fj_framer, made once per thread; None without the codec."""
    found = getattr(_local, "framer", None)
    if found is None and lib is not None:
        codec = _codec()
        if codec is None:
            return None
        zstd_ffi, zstd_lib = codec
        context = zstd_ffi.gc(zstd_lib.ZSTD_createCCtx(), zstd_lib.ZSTD_freeCCtx)

        def address(pointer):
            return ffi.cast("void *", int(zstd_ffi.cast("uintptr_t", pointer)))

        found = ffi.new("struct fj_framer *", {
            "compress": address(zstd_ffi.addressof(zstd_lib, "ZSTD_compressCCtx")),
            "is_error": address(zstd_ffi.addressof(zstd_lib, "ZSTD_isError")),
            "ctx": address(context), "level": LEVEL})
        _local.framer, _local.context = found, context  # the context lives as long as the struct naming it
    return found


def frames(data, data_at, data_len, sizes):
    """(the frames' bytes, the longest frame) with data_at, data_len and
    sizes (record + key; array('I'), one item per record) rewritten to the
    frames, or None and the columns unusable. The frames' buffer is this thread's again once no
    table holds it (scratch.reusable)."""
    framer = _framer()
    count = len(data_at)
    if framer is None or len(data_len) != count or len(sizes) != count:
        return None
    at, lengths, sizes = (ffi.from_buffer("uint32_t[]", column, require_writable=True)
                          for column in (data_at, data_len, sizes))
    cap = lib.fj_frames_cap(lengths, count)
    out = scratch.reusable(_alloc, "zstd_frames", max(1, cap))
    used, longest = ffi.new("size_t *"), ffi.new("uint32_t *")
    rc = lib.fj_frames(framer, ffi.from_buffer("uint8_t[]", data), len(data), at, lengths, sizes, count,
                       out, len(out), used, longest)
    if rc != 0:
        return None
    return memoryview(ffi.buffer(out, used[0])), longest[0]
