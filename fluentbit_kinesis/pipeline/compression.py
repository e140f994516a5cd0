"""Per-record payload compression: zlib and gzip streams as the AWS Go plugin
writes them (RFC 1950 / RFC 1952), plus zstd (one frame per record).

zlib and gzip come from ISA-L (the `isal` package) when it is installed: for a
~250 B record it takes about half the CPU of zlib, which spends most of it
building Huffman trees for each tiny stream. The output is the same formats;
any zlib/gzip decoder reads it. Without `isal`, Python's zlib is used.

compress_all compresses a chunk's payloads; zstd then makes the same frames
as one compress() per record in few C calls (BENCHMARKS.md, "zstd in batches").
zstd's `table` does so over the fast path's EntryTable (zstd_frames.py).
"""
import functools
import zlib

from . import zstd_frames

ISAL_LEVEL = 2  # ISA-L levels run 0-3; 2 compresses about as well as zlib's default here
ZSTD_BATCH = 1024  # records per zstd C call: the output buffer it adds stays small


def _deflate_compressor(wbits):
    """wbits 15: zlib, 31: gzip (mtime 0, so a record always compresses the same).
    ISA-L is imported here, when configured: not in memory otherwise."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal ships wheels for the usual platforms
        return functools.partial(zlib.compress, level=6, wbits=wbits)
    return functools.partial(isal_zlib.compress, level=ISAL_LEVEL, wbits=wbits)


def _zstd_compressor():
    import threading
    import zstandard

    # a ZstdCompressor must not be used by two threads at once (workers > 1)
    local = threading.local()
    to_bytes = zstandard.BufferSegment.tobytes

    def engine():
        found = getattr(local, "engine", None)
        if found is None:
            found = local.engine = zstandard.ZstdCompressor(level=3)
        return found

    def compress(data):
        return engine().compress(data)

    def compress_many(payloads):
        """The frames compress() makes, byte for byte, ZSTD_BATCH records per
        C call in this thread (threads=0): no Python call and output set-up
        per record. The zstd work itself (entropy tables per frame) stays."""
        batch = engine().multi_compress_to_buffer
        out = []
        for start in range(0, len(payloads), ZSTD_BATCH):
            part = payloads[start:start + ZSTD_BATCH]
            try:
                out += map(to_bytes, batch(part, threads=0))
            except ValueError:  # it refuses a batch of only empty payloads
                out += map(compress, part)
        return out

    compress.many = compress_many
    compress.table = zstd_frames.frames  # the same frames, over a table's columns
    return compress


def compress_all(compress, payloads):
    """[compress(p) for p in payloads], in few calls when the codec can batch."""
    many = getattr(compress, "many", None)
    return list(map(compress, payloads)) if many is None else many(payloads)


def compressor(name):
    """A bytes -> bytes function for the `compression` option, or None."""
    if name in (None, "", "none"):
        return None
    if name == "zlib":
        return _deflate_compressor(15)
    if name == "gzip":
        return _deflate_compressor(31)
    if name == "zstd":
        return _zstd_compressor()
    raise ValueError(f"unknown compression '{name}'")


def decompress(name, data):
    """The inverse, for tests and tools."""
    if name in (None, "", "none"):
        return data
    if name in ("zlib", "gzip"):
        return zlib.decompress(data, wbits=15 if name == "zlib" else 31)
    if name == "zstd":
        import zstandard
        return zstandard.ZstdDecompressor().decompress(data)
    raise ValueError(f"unknown compression '{name}'")
