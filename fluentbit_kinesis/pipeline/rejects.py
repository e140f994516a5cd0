"""What cannot be sent, as data: a DeadLetter item per record (or per run of
bytes that are no event), with the reason, and the record packed for it.
delivery.dead_letters writes them to the dead-letter file."""
from dataclasses import dataclass

import msgpack


@dataclass(slots=True)
class DeadLetter:
    reason: str
    partition_key: str = None
    payload: bytes = None  # what would have been sent
    original: tuple = None  # else (format, bytes) of the record, e.g. ("raw", bytes of the chunk)
    count: int = 1  # records (chunk items) it stands for


def pack_original(record):
    """("msgpack", bytes) of a record, or ("repr", text) when msgpack cannot pack it."""
    try:
        return "msgpack", msgpack.packb(record, use_bin_type=True, default=repr,
                                        unicode_errors="surrogateescape")  # invalid UTF-8: the bytes as received
    except Exception:  # too big an integer, too deep, ...: its text
        pass
    try:
        return "repr", repr(record).encode("utf-8", "replace")
    except Exception:  # nested too deeply even for repr
        return "none", b""
