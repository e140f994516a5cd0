"""Remembers, per chunk, which events are already done (acknowledged by
Kinesis or dead-lettered), so a chunk that Fluent Bit hands back sends only
the rest: after a retry, and with `ledger_path`, after a restart (Fluent Bit
replays a chunk from its filesystem storage with the same bytes, so the same
key finds it).

In memory: the chunks answered FLB_RETRY (the last MAX_CHUNKS), each as
ranges of event indices, not sets (a set of 8,000 ints is ~300 KB).

On disk (`ledger_path`, a directory 0700 of files 0600), one append-only file
per instance: a line per acknowledged PutRecords request (and one when a
chunk's dead letters are written):

    CRC32 CHUNK-KEY UNIX-TIME EVENTS      e.g. "1c291ca3 9f...e1 1764644000 0:499"

EVENTS: comma separated "first:last" runs and single indices, or for a
scattered set (the records of one shard's aggregates) "*HEX", a bitmap
(bit i: event i), built without a Python step per index. The CRC covers the rest of the line; a torn last line (a crash mid-write) or
a damaged one is skipped on load, and the lines before it stand. Writes are
not fsynced: a killed process loses nothing written (the kernel has it); an
operating system crash can lose the last seconds, which then are sent again
(duplicates, never loss). At SEGMENT_BYTES the file rotates: the chunks still
in memory are written to a new file (fsynced), the old one is kept as `.1`
and the one before it deleted, so what no flush touched for two segments
(chunks long delivered) expires, and so do entries older than MAX_AGE.
"""
import hashlib
import os
import threading
import time
import zlib
from collections import OrderedDict, deque
from itertools import repeat

from ..pipeline.entry_kernels_native import ledger_line

MAX_CHUNKS = 256
SEGMENT_BYTES = 4 * 1024 * 1024
MAX_AGE = 7 * 24 * 3600.0  # seconds: a chunk retried for longer than this is forgotten


class LedgerError(Exception):
    pass


def chunk_key(tag, data):
    """SHA-256 (in hardware on current x86 and ARM CPUs: faster than BLAKE2b
    there, ~0.4 µs per 250 B record) of tag and chunk, cut to 16 bytes."""
    digest = hashlib.sha256(data)
    digest.update(tag.encode("utf-8", "replace"))
    return digest.digest()[:16]


def to_ranges(indices):
    """Sorted inclusive (first, last) runs of distinct ints."""
    ordered = sorted(indices)
    if not ordered:
        return []
    if ordered[-1] - ordered[0] + 1 == len(ordered):  # the usual case: one run
        return [(ordered[0], ordered[-1])]
    runs, first, last = [], ordered[0], ordered[0]
    for i in ordered[1:]:
        if i != last + 1:
            runs.append((first, last))
            first = i
        last = i
    runs.append((first, last))
    return runs


def expand(ranges):
    done = set()
    for first, last in ranges:
        done.update(range(first, last + 1))
    return done


def _format(runs):
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


def _encode_reference(indices):
    """EVENTS of a line, in Python: one run (the usual case), a bitmap, or runs
    (with DEAD_LETTERS_WRITTEN); what the native line writes for an array('I')."""
    first, last = min(indices), max(indices)
    if last - first + 1 == len(indices):
        return f"{first}:{last}"
    if first < 0:  # DEAD_LETTERS_WRITTEN (-1): not on the hot path
        return _format(to_ranges(indices))
    bits = bytearray(b"0") * (last + 1)
    deque(map(bits.__setitem__, indices, repeat(49)), maxlen=0)  # "1" at each index, in C
    bits.reverse()
    return f"*{int(bits, 2):x}"


def _parse(text):
    if text.startswith("*"):
        bits = bin(int(text[1:], 16))[:1:-1]  # least significant first: bit i is event i
        return to_ranges([i for i, bit in enumerate(bits) if bit == "1"])
    runs = []
    for part in text.split(","):
        a, _, b = part.partition(":")
        runs.append((int(a), int(b or a)))
    return runs


def _line(key, when, events):
    body = f"{key.hex()} {int(when)} {events}"
    return f"{zlib.crc32(body.encode()):08x} {body}\n".encode()


class Ledger:
    def __init__(self, path=None, name="kinesis", max_chunks=MAX_CHUNKS, segment_bytes=SEGMENT_BYTES,
                 logger=None):
        self.max_chunks = max_chunks
        self.segment_bytes = segment_bytes
        self.log = logger
        self._done = OrderedDict()  # chunk key -> (last touched, ranges)
        self._flushing = {}         # chunk key -> the live set of a flush in progress
        self._lock = threading.Lock()
        self._fd = None
        self.skipped_lines = 0      # torn or damaged lines ignored on load
        self.persistent = path is not None
        if self.persistent:
            self._open(os.fspath(path), name)

    # ---- in memory ---------------------------------------------------------------

    def __len__(self):
        return len(self._done)

    def done(self, key):
        """Event indices of this chunk already done; empty for a new chunk."""
        if not self._done or key is None:
            return frozenset()
        with self._lock:
            found = self._done.get(key)
        return frozenset(expand(found[1])) if found else frozenset()

    def remember(self, key, indices):
        with self._lock:
            self._done[key] = (time.time(), to_ranges(indices))
            self._done.move_to_end(key)
            while len(self._done) > self.max_chunks:
                self._done.popitem(last=False)

    def forget(self, key):
        with self._lock:
            self._done.pop(key, None)

    # ---- on disk -----------------------------------------------------------------

    def flushing(self, key, finished):
        """Registers the live `finished` set of a flush, so a rotation during
        it keeps what it already did. Call done_flushing(key) after."""
        if self.persistent:
            self._flushing[key] = finished

    def done_flushing(self, key):
        self._flushing.pop(key, None)

    def record(self, key, indices):
        """Appends that these events of a chunk are done (with ledger_path);
        one small line, no fsync. A failed write costs at most duplicates
        after a restart, never a record: it is logged, not raised."""
        if self._fd is None or not indices:
            return
        when = int(time.time())
        line = ledger_line(indices, key, when) or _line(key, when, _encode_reference(indices))
        try:
            with self._lock:
                os.write(self._fd, line)
                self._size += len(line)
                if self._size >= self.segment_bytes:
                    self._rotate()
        except OSError as exc:
            self._warn(f"cannot write the ledger {self.file}: {exc.strerror or exc}; "
                       "a restart may send these records again")

    def close(self):
        """At exit: to disk. The file stays open for a flush that is still
        returning (it may record its last requests)."""
        with self._lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass

    def _open(self, directory, name):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self.file = os.path.join(directory, f"{safe}.ledger")
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            for path in (self.file + ".1", self.file + ".new", self.file):
                self._load(path)  # oldest first; a later line only adds
            self._fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(self._fd, 0o600)
            self._size = os.fstat(self._fd).st_size
            if self.log is not None:
                skipped = f" ({self.skipped_lines} torn or damaged lines skipped)" if self.skipped_lines else ""
                self.log.info(f"ledger {self.file}: {len(self._done)} unfinished chunks from before{skipped}")
        except OSError as exc:
            raise LedgerError(f"option 'ledger_path': cannot use {self.file}: "
                              f"{exc.strerror or exc}") from None

    def _load(self, path):
        try:
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            return
        found = OrderedDict()  # bounded as the memory is: the chunks seen last
        oldest = time.time() - MAX_AGE
        for raw in lines[:-1]:  # the last piece has no newline: empty, or torn
            try:
                crc, body = raw.decode("ascii").split(" ", 1)
                if int(crc, 16) != zlib.crc32(body.encode()):
                    raise ValueError("checksum")
                key, when, runs = body.split(" ")
                key, when, runs = bytes.fromhex(key), float(when), _parse(runs)
            except ValueError:
                self.skipped_lines += 1
                continue
            if when < oldest:
                continue
            seen = found.get(key)
            if seen is None:
                seen = found[key] = [when, []]
                if len(found) > self.max_chunks:
                    found.popitem(last=False)
            else:
                found.move_to_end(key)
            seen[0] = max(seen[0], when)
            seen[1].extend(runs)
        self.skipped_lines += bool(lines[-1])
        for key, (when, runs) in found.items():
            old = self._done.pop(key, (0, []))
            self._done[key] = (max(when, old[0]), to_ranges(expand(old[1] + runs)))
        while len(self._done) > self.max_chunks:
            self._done.popitem(last=False)

    def _rotate(self):
        """Under the lock. The new file is complete and fsynced before it
        replaces the old one; a crash at any step leaves files whose union
        holds everything (load reads .1, .new and the file)."""
        oldest = time.time() - MAX_AGE
        snapshot = [_line(key, when, _format(runs)) for key, (when, runs) in self._done.items()
                    if when >= oldest and runs]
        snapshot += [_line(key, time.time(), _format(to_ranges(frozenset(live))))
                     for key, live in list(self._flushing.items()) if live]
        new = self.file + ".new"
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(snapshot))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.file, self.file + ".1")
        os.replace(new, self.file)
        directory = os.open(os.path.dirname(self.file) or ".", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        os.close(self._fd)
        self._fd = os.open(self.file, os.O_WRONLY | os.O_APPEND)
        self._size = sum(map(len, snapshot))

    _last_warning = 0.0

    def _warn(self, text):
        if self.log is not None and time.monotonic() - self._last_warning > 60:
            self._last_warning = time.monotonic()
            self.log.warn(text)
