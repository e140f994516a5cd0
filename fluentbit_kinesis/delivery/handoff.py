"""Flushes on Fluent Bit's engine thread (the output's default `workers 0`).

There a flush must never wait on Kinesis: the engine thread also runs every
input and every other output, and Fluent Bit's default Retry_Limit (1) drops
a chunk answered RETRY twice, so answering RETRY through an outage loses it.
So the chunk is copied and handed to background threads, which deliver it
with the usual flush (ledger included: a retried round sends only what is
left) and keep retrying until it is delivered. Up to OVERLAP chunks are in
delivery at once (only where it helps: _may_join), so that a hot shard, paced
at its limit, does not hold back the other shards' records of later chunks;
each shard still gets its records in the chunks' order (shard_order: a chunk
takes its ticket here, in queue order).

Fluent Bit deletes a chunk it was answered OK for, so OK comes only once the
chunk is delivered or durably kept in the spool (spool.py): the engine waits
up to WAIT_ON_ENGINE for the delivery, which is the usual case, and a chunk
still undelivered then (or queued behind others: an outage, a backlog) is
written and fsynced first. One queued behind others is written straight from
Fluent Bit's buffer and read back for each round of its flush, which lets go
of it once shaped (a backlog, and the chunks in delivery, cost disk, not memory).
When the spool cannot be written (disk full, read-only) the engine waits for the delivery.

The queue is bounded (`handoff_max_bytes`). When it is full a new chunk is
answered RETRY: Fluent Bit keeps it and offers it again later. Offered again
while the queue is still full, it is waited for (a second RETRY would drop it).

At exit the queue is delivered for up to DRAIN_AT_EXIT (Fluent Bit's default
grace); what is left stays in the spool for the next start.
"""
import threading
import time
from collections import OrderedDict, deque

from .ledger import chunk_key
from .rounds import flush_until_delivered

FLB_OK, FLB_RETRY = 1, 2
WAIT_ON_ENGINE = 0.2  # seconds the engine may wait for a chunk's delivery
DRAIN_AT_EXIT = 5.0
STOP_AT_EXIT = 10.0  # for a request in flight to end once told to stop
OVERLAP = 8  # chunks in delivery at once (a thread each, started when a chunk waits for one)
JOIN_AFTER = 0.5  # seconds the oldest chunk in delivery has taken before a further chunk may join it
MAX_REFUSED = 4096  # chunk keys remembered as answered RETRY because the queue was full


def engine_thread_warning(spooled):
    """The one warning when flushes first arrive on the engine thread."""
    if spooled:
        return ("flushes run on Fluent Bit's engine thread (this output's 'workers' is 0): chunks are "
                "delivered from a background queue so the engine does not wait on Kinesis; a chunk is "
                "acknowledged to Fluent Bit once delivered, or once kept in the hand-off spool")
    return ("flushes run on Fluent Bit's engine thread (this output's 'workers' is 0) and there is no "
            "durable state (ledger_path off or no writable directory): each flush waits until Kinesis "
            "has its records, so during an outage or throttling every input and output of this Fluent "
            "Bit waits too; give ledger_path a writable directory, or set 'workers 1' on this output")


class _Chunk:
    __slots__ = ("data", "tag", "size", "done", "spooled", "taken", "since")

    def __init__(self, data, tag, size, spooled=None):
        self.data = data  # None: in the spool only, read when delivered
        self.tag = tag
        self.size = size
        self.done = threading.Event()
        self.spooled = spooled  # its file in the spool, if any
        self.taken = False  # a thread delivers it
        self.since = 0.0  # monotonic time it was taken


class HandOff:
    """flush(data, tag, ticket) -> FLB_OK / FLB_RETRY delivers a chunk (the
    instance's own flush); give_up(data, tag, reason) dead-letters what is
    left of it; order: the stream's ShardOrder, whose tickets flush takes."""

    def __init__(self, flush, give_up, logger, stop_event, max_bytes, spool, order, failing, name="kinesis"):
        self.flush = flush
        self.order = order
        self.failing = failing  # () -> True while requests fail (an outage): one chunk at a time then
        self.give_up = give_up
        self.spool = spool
        self.log = logger
        self.stop = stop_event
        self.max_bytes = max_bytes
        self.queue = deque()
        self.queued_bytes = 0
        self.refused = OrderedDict()
        self.cond = threading.Condition()
        self.closed = False
        self.warned = {}  # what -> monotonic time of its last warning
        try:
            left = spool.left()  # what an earlier run acknowledged but did not deliver
        except OSError as exc:
            logger.error(f"cannot read the hand-off spool {spool.directory}: {exc.strerror or exc}")
            left = []
        for size, tag, path in left:
            self.queue.append(_Chunk(None, tag, size, path))
            self.queued_bytes += size
        if spool.corrupt:
            logger.error(f"hand-off spool {spool.directory}: {spool.corrupt} damaged files set aside in "
                         f"{spool.directory}.corrupt (their records are not delivered; the files are kept)")
        if self.queue:
            logger.info(f"hand-off spool {spool.directory}: {len(self.queue)} chunks from before, delivering them")
        self.name = name
        self.threads = []  # started one by one, as chunks wait for one (_grow)
        self.free = []  # threads not delivering a chunk; the last one freed takes the next chunk
        with self.cond:
            self._start_thread()

    def take(self, data, tag):
        """Called on the engine thread: FLB_OK once the chunk is delivered or
        kept on disk, FLB_RETRY when the queue is full (see the module doc).
        Behind others (a backlog) it goes to the spool at once, from Fluent
        Bit's buffer, and is read back when its turn comes: not held in memory."""
        size = len(data)
        with self.cond:
            if self.closed or (self.queue and self.queued_bytes + size > self.max_bytes
                               and not self._room_for(data, tag, size)):
                return FLB_RETRY
            idle = not self.queue
        if not idle:
            try:
                self._enqueue(_Chunk(None, tag, size, self.spool.keep(data, tag)))
                return FLB_OK
            except OSError:
                pass  # the spool cannot be written: kept in memory, and waited for (_keep)
        chunk = _Chunk(bytes(data), tag, size)  # Fluent Bit frees `data` when the flush returns
        self._enqueue(chunk)
        if idle and chunk.done.wait(WAIT_ON_ENGINE):
            return FLB_OK  # delivered: Fluent Bit may delete it
        return self._keep(chunk)

    def _room_for(self, data, tag, size):
        """Under the lock, the queue full: False (answer RETRY) the first time a
        chunk is offered, else waits for room; False if closed meanwhile."""
        key = chunk_key(tag, data)
        if key not in self.refused:
            self._refuse(key)
            return False
        self._warn("full", "hand-off queue full: the engine waits for room (offered again: "
                   "a second RETRY would drop it)")
        while self.queue and self.queued_bytes + size > self.max_bytes and not self.closed:
            self.cond.wait(1.0)
        self.refused.pop(key, None)
        return not self.closed

    def _enqueue(self, chunk):
        with self.cond:
            self.queue.append(chunk)
            self.queued_bytes += chunk.size
            self._grow()
            self.cond.notify_all()

    def _keep(self, chunk):
        """Spools an undelivered chunk before it is acknowledged; if that fails, waits for its delivery."""
        data = chunk.data  # None: delivered meanwhile (the delivering thread let go of it)
        try:
            name = self.spool.keep(data, chunk.tag) if data is not None else None
        except OSError as exc:
            self._warn("disk", f"cannot keep chunks in the hand-off spool {self.spool.directory}: "
                       f"{exc.strerror or exc}; the engine waits for their delivery instead")
            return self._wait_delivered(chunk)
        with self.cond:
            chunk.spooled = name
            delivered = chunk.done.is_set()
        if delivered and name is not None:
            self.spool.drop(name)
        return FLB_OK

    def _wait_delivered(self, chunk):
        while not chunk.done.wait(1.0):
            with self.cond:
                if self.closed and not chunk.done.is_set():
                    if chunk in self.queue:  # never acknowledged: Fluent Bit keeps it
                        self.queue.remove(chunk)
                        self.queued_bytes -= chunk.size
                    return FLB_RETRY
        return FLB_OK

    def _refuse(self, key):
        self.refused[key] = True
        while len(self.refused) > MAX_REFUSED:
            self.refused.popitem(last=False)
        self._warn("full", "hand-off queue full: chunk answered RETRY; Fluent Bit offers it again later")

    def _warn(self, what, text):
        now = time.monotonic()
        if now - self.warned.get(what, -60.0) > 10.0:
            self.warned[what] = now
            self.log.warn(f"{text} ({self.queued_bytes} bytes in {len(self.queue)} chunks queued, "
                          f"handoff_max_bytes {self.max_bytes})")

    def _start_thread(self):  # under the lock: the thread waits for it before it looks for a chunk
        thread = threading.Thread(target=self._run, name=f"{self.name}-handoff-{len(self.threads)}", daemon=True)
        thread.start()
        self.threads.append(thread)
        self.free.append(thread)

    def _grow(self):
        """Under the lock: one more thread when a chunk waits and none is free. Threads start only when
        needed: each thread that allocates gets a malloc arena of its own, which keeps what it freed."""
        if not self.free and len(self.threads) < OVERLAP and not self.closed \
                and any(not chunk.taken for chunk in self.queue):
            try:
                self._start_thread()
            except RuntimeError:  # no more threads in this process: the running ones deliver the queue
                pass

    def _next(self):
        """The first chunk no thread delivers yet, and its ticket; None: stop."""
        me = threading.current_thread()
        with self.cond:
            taken = self._wait_for_chunk(me)
            if taken is not None:
                self.free.remove(me)
                self.cond.notify_all()  # the next free thread, for the chunks after it
                self._grow()
            return taken

    def _wait_for_chunk(self, me):
        """Under the lock, as _next. Only the thread freed last looks: one thread
        (one malloc arena) delivers a steady flow."""
        while True:
            if self.stop.is_set() or (self.closed and not self.queue):
                return None
            chunk = next((chunk for chunk in self.queue if not chunk.taken), None)
            if chunk is None or self.free[-1] is not me:
                self.cond.wait()
            elif chunk is self.queue[0] or self._may_join():
                chunk.taken = True
                chunk.since = time.monotonic()
                return chunk, self.order.reserve()  # under the lock: tickets in queue order
            else:
                self.cond.wait(0.05)  # the chunks in delivery say where they send as they go

    def _may_join(self):
        """A further chunk joins those in delivery only where it helps: not in an outage, nor when every
        shard has work, nor while the oldest in delivery is younger than JOIN_AFTER (they go at the pace
        this process shapes them: another would only hold more in memory)."""
        return time.monotonic() - self.queue[0].since >= JOIN_AFTER and not self.failing() \
            and self.order.idle_shards()

    def _run(self):
        while True:
            taken = self._next()
            if taken is None:
                return
            chunk, ticket = taken
            try:
                delivered = self._deliver(chunk, ticket)
            finally:
                self.order.leave(ticket)
            if not delivered:
                return  # stopping: what is left stays in the spool
            with self.cond:
                if chunk in self.queue:
                    self.queue.remove(chunk)
                    self.queued_bytes -= chunk.size
                chunk.data = None  # megabytes: not kept while this thread waits for the next chunk
                chunk.done.set()
                spooled = chunk.spooled
                self.free.append(threading.current_thread())
                self.cond.notify_all()
            if spooled:
                self.spool.drop(spooled)

    def _deliver(self, chunk, ticket):
        """True once delivered, or set aside (its spool file damaged); False: stopping. `load`: rounds.py."""
        load = None if chunk.data is not None else (lambda: self._read_back(chunk))
        return flush_until_delivered(lambda data, tag: self.flush(data, tag, ticket), chunk.data, chunk.tag,
                                     self.stop, self.log, self.give_up, load)

    def _read_back(self, chunk):
        data, set_aside = self.spool.read_back(chunk.spooled, self.stop, self.log)
        chunk.spooled = None if set_aside else chunk.spooled  # set aside: no longer in the spool
        return data, set_aside

    def close(self, drain=DRAIN_AT_EXIT):
        """Delivers the queue for up to `drain` seconds, then stops the
        thread; what is left stays in the spool. Returns the chunks left."""
        deadline = time.monotonic() + drain
        with self.cond:
            while self.queue and time.monotonic() < deadline:
                self.cond.wait(max(0.01, deadline - time.monotonic()))
            self.closed = True
            self.cond.notify_all()
        self.stop.set()
        with self.cond:
            self.cond.notify_all()
        deadline = time.monotonic() + STOP_AT_EXIT
        for thread in list(self.threads):  # closed: no more start
            thread.join(max(0.0, deadline - time.monotonic()))
        with self.cond:
            left = len(self.queue)
            self.queue.clear()
            self.queued_bytes = 0
        if left:
            self.log.warn(f"{left} chunks not delivered before exit are kept in the hand-off spool "
                          f"{self.spool.directory}; the next start delivers them")
        return left
