"""Per-record payload compression: zlib and gzip streams as the AWS Go plugin
writes them (RFC 1950 / RFC 1952), plus zstd (one frame per record).

zlib and gzip come from ISA-L (the `isal` package) when it is installed: for a
~250 B record it takes about half the CPU of zlib, which spends most of it
building Huffman trees for each tiny stream. The output is the same formats;
any zlib/gzip decoder reads it. Without `isal`, Python's zlib is used.
"""
import functools
import zlib

try:
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal ships wheels for the usual platforms
    isal_zlib = None

ISAL_LEVEL = 2  # ISA-L levels run 0-3; 2 compresses about as well as zlib's default here


def _deflate_compressor(wbits):
    """wbits 15: zlib, 31: gzip (mtime 0, so a record always compresses the same)."""
    if isal_zlib is not None:
        return functools.partial(isal_zlib.compress, level=ISAL_LEVEL, wbits=wbits)
    return functools.partial(zlib.compress, level=6, wbits=wbits)


def _zstd_compressor():
    import threading
    import zstandard

    # a ZstdCompressor must not be used by two threads at once (workers > 1)
    local = threading.local()

    def compress(data):
        engine = getattr(local, "engine", None)
        if engine is None:
            engine = local.engine = zstandard.ZstdCompressor(level=3)
        return engine.compress(data)
    return compress


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
