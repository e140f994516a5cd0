"""ShapedChunk: what shaping makes of one chunk, by the native fast path or
by the Python path alike: the Kinesis entries, and what cannot be sent, kept
as data for the dead letters."""
from dataclasses import dataclass, field

from .events import DecodedChunk
from .rejects import DeadLetter


@dataclass
class ShapedChunk:
    entries: list = field(default_factory=list)   # (data bytes, partition key, event index)
    rejected: list = field(default_factory=list)  # (event index, reason, key, payload or None)
    # event index -> the record of a rejected one without payload, packed for its dead letter:
    # kept instead of the record, so a chunk of rejects holds no Python object per field
    originals: dict = field(default_factory=dict)
    random_keys: int = 0  # records whose partition_key was missing or not a string
    invalid_utf8: int = 0  # records with invalid UTF-8 or bin values replaced, encoded or dead-lettered
    not_normalized: int = 0  # field_format: records sent as they came (no schema could be read or written)
    decoded: DecodedChunk = field(default_factory=DecodedChunk)  # bytes that are no event (Python path)
    path: str = "python"  # or "fast", or "mixed" (field_format: some records natively): which path shaped it

    def dead_letter_count(self):
        """Records (chunk items) that go to the dead letters."""
        decoded = self.decoded
        return sum(run.count for run in decoded.rejected) + bool(decoded.error) + len(self.rejected)

    def dead_letters(self):
        """DeadLetter items for all that cannot be sent, one at a time."""
        decoded = self.decoded
        for run in decoded.rejected:
            yield DeadLetter(run.reason, original=("raw", run.data), count=run.count)
        if decoded.error:
            yield DeadLetter(decoded.error, original=("raw", decoded.undecoded))
        originals = self.originals
        for index, reason, key, payload in self.rejected:
            # a reject without payload nor original (none known) still leaves its reason
            yield DeadLetter(reason, key, payload, originals.get(index))

    def rejected_indices(self):
        return [index for index, *_ in self.rejected]
