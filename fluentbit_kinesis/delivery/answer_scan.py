"""How many entries of a PutRecords answer failed, read without building a
Python object per entry (the answer of 500 acknowledged entries is 500 dicts
to orjson). This is the Python reference; the native scan (C) must agree
with it on whatever it does not decline: csrc/fastjson_answer.c, a strict
scan of the answer's JSON that counts without building anything."""
import orjson

from ..pipeline.entry_kernels_native import ffi, lib  # the native module, when built (delivery imports it via pipeline)

NATIVE = lib is not None and hasattr(lib, "fj_failed_entries")


def failed_entries(data, count):
    """failed_entries_reference's answer, natively when it can."""
    found = native_failed_entries(data, count)
    return found if found is not None else failed_entries_reference(data, count)


def native_failed_entries(data, count):
    """The same number from the C scan, or None when it declines (or is not built)."""
    if not NATIVE or type(count) is not int or not 0 <= count < 2 ** 63:
        return None
    try:
        buffer = ffi.from_buffer("uint8_t[]", data)
    except TypeError:  # not bytes-like (a str): the reference reads it
        return None
    found = lib.fj_failed_entries(buffer, len(buffer), count)
    return found if found >= 0 else None


def failed_entries_reference(data, count):
    """The number of entries of the HTTP 200 answer `data` whose ErrorCode is
    present and not null, when `data` is a JSON object whose "Records" is an
    array of exactly `count` objects; None otherwise (the caller then reads
    the answer in full)."""
    try:
        answer = orjson.loads(data)
    except ValueError:
        return None
    records = answer.get("Records") if isinstance(answer, dict) else None
    if not isinstance(records, list) or len(records) != count or not all(isinstance(r, dict) for r in records):
        return None
    return sum(1 for r in records if r.get("ErrorCode") is not None)
