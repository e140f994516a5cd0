"""Per-record payload compression: zlib and gzip as the AWS Go plugin writes
them (RFC 1950 / RFC 1952), plus zstd (one frame per record)."""
import zlib


def _gzip_compressor():
    import gzip

    def compress(data):
        # mtime=0: the same record always compresses to the same bytes
        return gzip.compress(data, compresslevel=6, mtime=0)
    return compress


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
        return zlib.compress
    if name == "gzip":
        return _gzip_compressor()
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
