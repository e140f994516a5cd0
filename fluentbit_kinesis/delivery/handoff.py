"""Flushes on Fluent Bit's engine thread (the output's default `workers 0`).

There a flush must never wait on Kinesis: the engine thread also runs every
input and every other output, and Fluent Bit's default Retry_Limit (1) drops
a chunk answered RETRY twice, so answering RETRY through an outage loses it.
So the chunk is copied and handed to one background thread per instance,
which delivers it with the usual flush (ledger included: a retried round
sends only what is left) and keeps retrying until it is delivered. The
engine waits at most WAIT_ON_ENGINE for that delivery, so in normal running
a chunk is acknowledged to Fluent Bit once Kinesis has it; while chunks are
queued (an outage) new ones are only queued.

The queue is bounded (`handoff_max_bytes`). When it is full a new chunk is
answered RETRY: Fluent Bit keeps it and offers it again later. Offered again
while the queue is still full, it is waited for (the engine waits: a second
RETRY would drop it under the default Retry_Limit).

At exit the queue is drained for up to DRAIN_AT_EXIT; what is still
undelivered then goes to the dead letters with the reason.

With `ledger_path` the queue is also kept on disk (Spool): a chunk answered
OK is in a file before the flush returns and until it is delivered, so a kill
(SIGKILL, OOM) or an exit during an outage loses nothing: the next start
delivers what the spool holds, and the ledger skips what was already sent.
"""
import os
import random
import struct
import threading
import time
from collections import OrderedDict, deque

from .ledger import chunk_key

FLB_OK, FLB_RETRY = 1, 2
WAIT_ON_ENGINE = 0.2  # seconds the engine may wait for a chunk's delivery
DRAIN_AT_EXIT = 5.0
STOP_AT_EXIT = 10.0  # for a request in flight to end once told to stop
MAX_PAUSE = 10.0  # between flush rounds of a chunk that is not delivered
MAX_FAILED_ROUNDS = 3  # rounds that raise before a chunk is given up to the dead letters
MAX_REFUSED = 4096  # chunk keys remembered as answered RETRY because the queue was full


def engine_thread_warning(spooled):
    """The one warning when flushes first arrive on the engine thread."""
    kept = ("kept in the hand-off spool until delivered (ledger_path)" if spooled
            else "held in memory only: a kill loses them; set ledger_path to keep them on disk")
    return ("flushes run on Fluent Bit's engine thread (this output's 'workers' is 0): "
            "chunks are delivered from a background queue and acknowledged to Fluent Bit "
            "when delivered or after 0.2 s, whichever is first, so the engine never waits "
            f"on Kinesis; queued chunks are {kept}; set 'workers 1' on this output so "
            "chunks are acknowledged only once delivered")


class _Chunk:
    __slots__ = ("data", "tag", "done", "spooled")

    def __init__(self, data, tag, spooled=None):
        self.data = data
        self.tag = tag
        self.done = threading.Event()
        self.spooled = spooled  # its file in the spool, if any


class Spool:
    """One file per queued chunk (0600, in a 0700 directory): a 4-byte tag
    length, the tag, the chunk. Written to a temporary name and renamed, so a
    kill mid-write leaves no half chunk under a real name. Not fsynced: a
    process kill keeps the page cache; a power cut may lose the newest files."""

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._serial = 0

    def keep(self, chunk):
        self._serial += 1
        name = os.path.join(self.directory, f"{chunk_key(chunk.tag, chunk.data).hex()}-{os.getpid()}-{self._serial}")
        tag = chunk.tag.encode("utf-8", "surrogateescape")
        fd = os.open(name + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(struct.pack(">I", len(tag)) + tag + chunk.data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(name + ".tmp", name)
        return name

    def drop(self, name):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass

    def left(self):
        """_Chunks of the files an earlier run left, oldest first; torn temporaries are removed."""
        entries = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".tmp"):
                self.drop(entry.path)
            elif entry.is_file(follow_symlinks=False):
                entries.append((entry.stat(follow_symlinks=False).st_mtime, entry.path))
        chunks = []
        for _mtime, path in sorted(entries):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                blob = f.read()
            size = struct.unpack(">I", blob[:4])[0] if len(blob) >= 4 else -1
            if size < 0 or 4 + size > len(blob):
                self.drop(path)  # not one of ours, or damaged: nothing to deliver
                continue
            chunks.append(_Chunk(blob[4 + size:], blob[4:4 + size].decode("utf-8", "surrogateescape"), path))
        return chunks


class HandOff:
    """flush(data, tag) -> FLB_OK / FLB_RETRY delivers a chunk (the instance's
    own flush); give_up(data, tag, reason) dead-letters what is left of it."""

    def __init__(self, flush, give_up, logger, stop_event, max_bytes, name="kinesis", spool=None):
        self.flush = flush
        self.spool = spool
        self.give_up = give_up
        self.log = logger
        self.stop = stop_event
        self.max_bytes = max_bytes
        self.queue = deque()
        self.queued_bytes = 0
        self.refused = OrderedDict()
        self.cond = threading.Condition()
        self.closed = False
        self.full_warned = 0.0
        if spool is not None:  # what an earlier run acknowledged but did not deliver
            for chunk in spool.left():
                self.queue.append(chunk)
                self.queued_bytes += len(chunk.data)
            if self.queue:
                logger.info(f"hand-off spool {spool.directory}: {len(self.queue)} chunks from before, delivering them")
        self.thread = threading.Thread(target=self._run, name=f"{name}-handoff", daemon=True)
        self.thread.start()

    def take(self, data, tag):
        """Called on the engine thread: FLB_OK once the chunk is delivered or
        queued here, FLB_RETRY when the queue is full (see the module doc)."""
        chunk = _Chunk(bytes(data), tag)  # Fluent Bit frees `data` when the flush returns
        size = len(chunk.data)
        with self.cond:
            if self.closed:
                return FLB_RETRY
            if self.queue and self.queued_bytes + size > self.max_bytes:
                key = chunk_key(tag, chunk.data)
                if key not in self.refused:
                    self._refuse(key)
                    return FLB_RETRY
                self._warn_full("the engine waits for room (offered again: a second RETRY would drop it)")
                while self.queue and self.queued_bytes + size > self.max_bytes and not self.closed:
                    self.cond.wait(1.0)
                self.refused.pop(key, None)
                if self.closed:
                    return FLB_RETRY
            if self.spool is not None:
                try:
                    chunk.spooled = self.spool.keep(chunk)
                except OSError as exc:  # not acknowledged unless it can be kept
                    self.log.error(f"cannot keep a chunk in the hand-off spool {self.spool.directory}: "
                                   f"{exc.strerror or exc}; answered RETRY")
                    return FLB_RETRY
            idle = not self.queue
            self.queue.append(chunk)
            self.queued_bytes += size
            self.cond.notify_all()
        if idle:
            chunk.done.wait(WAIT_ON_ENGINE)
        return FLB_OK

    def _refuse(self, key):
        self.refused[key] = True
        while len(self.refused) > MAX_REFUSED:
            self.refused.popitem(last=False)
        self._warn_full("chunk answered RETRY; Fluent Bit offers it again later")

    def _warn_full(self, what):
        now = time.monotonic()
        if now - self.full_warned > 10.0:
            self.full_warned = now
            self.log.warn(f"hand-off queue full ({self.queued_bytes} bytes in {len(self.queue)} chunks, "
                          f"handoff_max_bytes {self.max_bytes}): {what}; set 'workers 1' on this output")

    def _run(self):
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if not self.queue or self.stop.is_set():
                    return
                chunk = self.queue[0]
            if not self._deliver(chunk):
                return  # stopping: close() dead-letters what is left
            with self.cond:
                self.queue.popleft()
                self.queued_bytes -= len(chunk.data)
                self.cond.notify_all()
            if chunk.spooled:
                self.spool.drop(chunk.spooled)
            chunk.done.set()

    def _deliver(self, chunk):
        """Flush rounds until the chunk is delivered (True) or the instance stops (False)."""
        rounds = failed_rounds = 0
        while not self.stop.is_set():
            try:
                if self.flush(chunk.data, chunk.tag) == FLB_OK:
                    return True
            except OSError as exc:  # the dead-letter file cannot be written (disk full): retry
                self.log.error(f"flush failed: {exc}")
            except Exception as exc:  # a bug: never block the queue forever on one chunk
                failed_rounds += 1
                self.log.error(f"flush failed: {exc.__class__.__name__}: {str(exc)[:300]}")
                if failed_rounds >= MAX_FAILED_ROUNDS:
                    self._give_up(chunk, f"flush failed {failed_rounds} times: {exc.__class__.__name__}")
                    return True
            rounds += 1
            pause = min(MAX_PAUSE, 0.5 * 2 ** min(rounds, 10)) * random.uniform(0.5, 1.0)
            self.stop.wait(pause)
        return False

    def _give_up(self, chunk, reason):
        try:
            self.give_up(chunk.data, chunk.tag, reason)
        except Exception as exc:
            self.log.error(f"cannot dead-letter a chunk ({reason}): {exc.__class__.__name__}: {str(exc)[:300]}")

    def close(self, drain=DRAIN_AT_EXIT):
        """Waits up to `drain` seconds for the queue to empty, then stops the
        thread and dead-letters what is still undelivered (with a spool: keeps
        it there for the next start). Returns the chunks dead-lettered."""
        deadline = time.monotonic() + drain
        with self.cond:
            while self.queue and time.monotonic() < deadline:
                self.cond.wait(max(0.01, deadline - time.monotonic()))
            self.closed = True
            self.cond.notify_all()
        self.stop.set()
        self.thread.join(STOP_AT_EXIT)
        in_flight = self.thread.is_alive()  # a request still waiting for its answer
        with self.cond:
            left = list(self.queue)
            self.queue.clear()
            self.queued_bytes = 0
        if self.spool is not None and left:
            self.log.warn(f"{len(left)} chunks not delivered before exit are kept in the hand-off spool "
                          f"{self.spool.directory}; the next start delivers them")
            return 0
        reason = ("not delivered before exit (flushes on the engine thread; "
                  "chunk already acknowledged to Fluent Bit)")
        for number, chunk in enumerate(left):
            self._give_up(chunk, reason + ("; a request for it was unanswered at exit: "
                                           "some of its records may be in the stream too"
                                           if in_flight and number == 0 else ""))
        return len(left)
