"""The hand-off spool: one file per chunk that Fluent Bit was answered OK for
before Kinesis had all of it, so a kill or an exit loses nothing (the next
start delivers it; the ledger skips what was sent).

A file is MAGIC, a CRC-32 of the rest, the tag's length (4 bytes, big
endian), the tag and the chunk. It is written to a temporary name, fsynced,
renamed and its directory fsynced before the chunk is acknowledged. A file
that fails its checksum (or any other that is not one of ours) is moved to
DIRECTORY.corrupt/ and counted, never delivered and never deleted. Files of
the earlier format (no MAGIC: length, tag, chunk) are still read."""
import os
import struct
import zlib

from .ledger import chunk_key
from .rounds import MAX_FAILED_ROUNDS

MAGIC = b"FBKS\x02"
_HEADER = struct.Struct(">II")  # CRC-32, tag length
_OPEN = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
READ_PAUSE = 0.5  # seconds before a failed read is tried again (doubled each time)


class SpooledBytes(bytearray):
    """A chunk read back from the spool. Its file stays until the chunk is
    delivered, so a round of its flush may empty it once the chunk is shaped:
    megabytes a chunk not held while its requests go. The next round, or its
    dead letters, read the file again (rounds.flush_until_delivered)."""

    def release(self):
        try:
            self.clear()
        except BufferError:  # a view of it still lives: kept, as any chunk is
            pass


class Spool:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._serial = 0
        self.corrupt = 0  # files set aside since start

    def keep(self, data, tag):
        """Durably writes one chunk; returns its file name. Raises OSError
        (disk full, read-only) with nothing left behind under a real name."""
        self._serial += 1
        name = os.path.join(self.directory, f"{chunk_key(tag, data).hex()}-{os.getpid()}-{self._serial}")
        raw_tag = tag.encode("utf-8", "surrogateescape")
        body = struct.pack(">I", len(raw_tag)) + raw_tag
        crc = zlib.crc32(data, zlib.crc32(body))
        fd = os.open(name + ".tmp", _OPEN, 0o600)
        try:
            for piece in (MAGIC + struct.pack(">I", crc) + body, data):
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            os.close(fd)
            self.drop(name + ".tmp")
            raise
        os.close(fd)
        os.replace(name + ".tmp", name)
        _fsync_directory(self.directory)
        return name

    def drop(self, name):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass

    def left(self):
        """(size, tag, file) of the chunks an earlier run left, oldest first;
        torn temporaries are removed, damaged files set aside. Their bytes are
        read again when delivered (read): a backlog is not held in memory."""
        entries = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".tmp"):
                self.drop(entry.path)  # never renamed: its chunk was never acknowledged
            elif entry.is_file(follow_symlinks=False):
                entries.append((entry.stat(follow_symlinks=False).st_mtime, entry.path))
        chunks = []
        for _mtime, path in sorted(entries):
            try:
                data, tag = self.read(path)
            except OSError:  # unreadable: set aside as at start until now; a missing file is skipped
                data = tag = None
                self.set_aside(path)
            if data is not None:
                chunks.append((len(data), tag, path))
        return chunks

    def read(self, name):
        """(data, tag) of one file; (None, None) when it is missing, or damaged
        (then set aside, as at start). Raises OSError when it cannot be read."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None, None
        # unbuffered: the chunk is read once into its bytes (a buffered reader would
        # join what it had read ahead with the rest: a second copy of megabytes)
        with os.fdopen(fd, "rb", buffering=0) as f:
            head = f.read(len(MAGIC) + _HEADER.size)
            parsed = _parse_current(head, f) if head.startswith(MAGIC) else _parse(head + f.read())
        if parsed is None:
            self.set_aside(name)
            return None, None
        return parsed

    def read_back(self, name, stop, log):
        """(bytes, False) of a chunk kept here only, when its turn comes; (None, True)
        when its file is damaged, missing or unreadable MAX_FAILED_ROUNDS times
        (set aside: kept, never delivered); (None, False) when `stop` is set first."""
        for failed in range(1, MAX_FAILED_ROUNDS + 1):
            try:
                data, _tag = self.read(name)
            except OSError as exc:
                log.error(f"cannot read {name} of the hand-off spool: {exc.strerror or exc}")
                if stop.wait(READ_PAUSE * 2 ** (failed - 1)):
                    return None, False
                if failed < MAX_FAILED_ROUNDS:
                    continue
                self.set_aside(name)
                data = None
            if data is None:
                log.error(f"hand-off spool {self.directory}: {os.path.basename(name)} damaged, missing or "
                          f"unreadable: set aside in {self.directory}.corrupt (its records are not delivered; "
                          "the file is kept)")
                return None, True
            return data, False
        return None, False

    def set_aside(self, path):
        """Moves a damaged file out of the way (kept, for a person to look at)."""
        self.corrupt += 1
        aside = self.directory + ".corrupt"
        try:
            os.makedirs(aside, mode=0o700, exist_ok=True)
            os.replace(path, os.path.join(aside, os.path.basename(path)))
        except OSError:
            pass  # left where it is: read and counted again at the next start, never delivered


def _parse_current(head, f):
    """(data, tag) of a file in the current format, its bytes read once (a chunk
    is megabytes: no copies of it); None when it is damaged."""
    if len(head) < len(MAGIC) + _HEADER.size:
        return None
    crc, size = _HEADER.unpack_from(head, len(MAGIC))
    raw_tag = f.read(size)
    data = SpooledBytes(max(0, os.fstat(f.fileno()).st_size - f.tell()))  # read into it: no copy
    with memoryview(data) as view:
        got = 0
        while got < len(data):
            n = f.readinto(view[got:])
            if not n:
                return None  # shorter than its size said
            got += n
    if f.read(1):
        return None  # longer: changed while it was read
    if len(raw_tag) != size or zlib.crc32(data, zlib.crc32(raw_tag, zlib.crc32(head[len(MAGIC) + 4:]))) != crc:
        return None
    return data, raw_tag.decode("utf-8", "surrogateescape")


def _parse(blob):
    """(data, tag) of a file of the earlier format (no MAGIC), or None when it is damaged."""
    size = struct.unpack(">I", blob[:4])[0] if len(blob) >= 4 else -1
    if size < 0 or 4 + size > len(blob):
        return None
    return SpooledBytes(blob[4 + size:]), blob[4:4 + size].decode("utf-8", "surrogateescape")


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
