"""ChunkProgress keeps what a chunk's tries finished in the parts they came
in (a request's events: an array): a retry remembers, and a ledger rotation
writes, the same events as one set of them would be."""
import random
from array import array

from fluentbit_kinesis.delivery.chunk_progress import DEAD_LETTERS_WRITTEN, ChunkProgress
from fluentbit_kinesis.delivery.ledger import Ledger, to_ranges


def test_a_retry_remembers_every_finished_event(tmp_path):
    rng = random.Random(4)
    for round_ in range(40):
        ledger = Ledger(tmp_path / str(round_), segment_bytes=rng.choice([200, 10_000_000]))
        first = ChunkProgress(ledger, "tag", b"chunk %d" % round_)
        events = list(range(rng.randrange(1, 3000)))
        rng.shuffle(events)
        dead, events = events[:rng.randrange(0, 20)], events[20:]
        expected = set()
        with first.sending():
            first.dead_lettered(dead, len(dead))
            expected.update(dead + [DEAD_LETTERS_WRITTEN])
            while events:  # requests of acknowledged events, as arrays and lists
                part, events = events[:rng.randrange(1, 600)], events[600:] if rng.random() < 0.2 else []
                first.acked(array("I", part) if rng.random() < 0.7 else part)
                expected.update(part)
                assert set(first.finished) == expected and len(first.finished) == len(expected)
        first.retry_later()
        again = ChunkProgress(ledger, "tag", b"chunk %d" % round_)
        assert again.done == expected and again.dead_letters_written
        reloaded = Ledger(tmp_path / str(round_))  # what the file says after a restart (and rotations)
        # the events (-1, "dead letters written", goes to the file only with dead letters)
        assert to_ranges(reloaded.done(first.key) - {-1}) == to_ranges(expected - {-1})
