"""What the tries of one chunk have done, read from and written to the
ledger: the event indices Kinesis acknowledged or that went to the dead
letters, and whether the chunk's dead letters are written (never twice).
A chunk that Fluent Bit hands back (a retry, or a replay after a restart
with ledger_path) sends only the rest."""
from array import array
from contextlib import contextmanager

from ..pipeline.entry_table import EntryTable
from .ledger import chunk_key

# in a chunk's ledger entry: its dead letters are written
DEAD_LETTERS_WRITTEN = -1


class Finished:
    """The events a chunk's tries finished, kept in the parts they came in (a
    request's acknowledged events: an array) and made one set only when read
    (a retry, a ledger rotation): no set insert per event and request."""

    def __init__(self, done):
        self.parts = [done]

    def update(self, indices):
        self.parts.append(tuple(indices) if type(indices) not in (array, list, frozenset) else indices)

    def add(self, index):
        self.parts.append((index,))

    def __iter__(self):
        return iter(set().union(*list(self.parts)))  # list(): another thread may add a part meanwhile

    def __len__(self):
        return len(set().union(*list(self.parts)))


class ChunkProgress:
    def __init__(self, ledger, tag, data):
        self.ledger = ledger
        self.tag = tag
        self.data = data
        # hashing costs a pass over the chunk: only when a ledger may know it
        self.key = chunk_key(tag, data) if ledger.persistent or len(ledger) else None
        self.done = ledger.done(self.key)  # what earlier tries finished
        self.finished = Finished(self.done)  # ... and this one too

    @property
    def dead_letters_written(self):
        return DEAD_LETTERS_WRITTEN in self.done

    def dead_lettered(self, indices, records):
        """The chunk's dead letters are kept (`records` of them; `indices` the
        events among them): never written again for this chunk."""
        self.finished.update(indices)
        if records and not self.dead_letters_written:
            self.ledger.record(self.key, list(indices) + [DEAD_LETTERS_WRITTEN])
        self.finished.add(DEAD_LETTERS_WRITTEN)

    def todo(self, entries):
        """The entries no earlier try finished; the usual first try has nothing
        done: no pass over every record."""
        done = self.done
        if done and isinstance(entries, EntryTable):
            return entries.without_events(done)
        return [entry for entry in entries if entry[2] not in done] if done else entries

    def acked(self, indices):
        """Events Kinesis acknowledged (with ledger_path: one ledger line)."""
        self.finished.update(indices)
        if self.ledger.persistent:
            self.ledger.record(self.key, indices)

    @contextmanager
    def sending(self):
        """While requests are in flight: a ledger rotation keeps what this try did."""
        self.ledger.flushing(self.key, self.finished)
        try:
            yield
        finally:
            self.ledger.done_flushing(self.key)

    def delivered(self):
        if self.key:
            self.ledger.forget(self.key)

    def let_go(self):
        """Empties the chunk (spool.SpooledBytes: a later round reads it again)
        while its requests go; its key is taken first, for retry_later."""
        self.key_for_retry = self.key or chunk_key(self.tag, self.data)
        self.data.release()
        self.data = None

    def retry_later(self):
        """The chunk goes back to Fluent Bit: remember what this try finished."""
        key = self.key or (chunk_key(self.tag, self.data) if self.data is not None else self.key_for_retry)
        self.ledger.remember(key, self.finished)
