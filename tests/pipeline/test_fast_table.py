"""The fast path's EntryTable: plain records going to delivery as they are
come from the C output as columns (no object per record), the same entries
the tuple path gives; anything that may be rejected keeps the tuple path."""
import random

import pytest

from fluentbit_kinesis.config import Settings
from fluentbit_kinesis.delivery.chunk_progress import ChunkProgress
from fluentbit_kinesis.delivery.ledger import Ledger
from fluentbit_kinesis.pipeline import fastpath
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.pipeline.keys import RandomKey
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.support import differential
from tests.support.differential import compare, settings_for
from tests.support.harness import make_chunk

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")


def records(count, seed=1):
    rng = random.Random(seed)
    pods = [f"pod-{i}-é" if i % 3 == 0 else f"pod-{i}" for i in range(7)]
    return [{"log": "x" * rng.randrange(0, 300) + "\n", "stream": "stdout",
             "kubernetes": {"pod_name": rng.choice(pods)} if rng.random() < 0.9 else {}}
            for _ in range(count)]


@pytest.mark.parametrize("key", [None, ["kubernetes", "pod_name"]])
def test_table_holds_what_the_tuple_path_gives(key):
    chunk = make_chunk(records(500))
    settings = Settings(region="us-east-1", stream="s", partition_key=key)
    tabled = Shaper(settings, tables=True).shape_chunk(chunk)
    listed = Shaper(settings).shape_chunk(chunk)
    assert isinstance(tabled.entries, EntryTable) and isinstance(listed.entries, list)
    assert tabled.path == listed.path == "fast"
    assert tabled.random_keys == listed.random_keys
    assert (tabled.random_keys == 0) == (key is None)
    table = list(tabled.entries)
    assert [(d, e) for d, _k, _h, e in table] == [(d, e) for d, _k, e in listed.entries]
    assert all(h is None for _d, _k, h, _e in table)
    for (_d, key_t, _h, _e), (_d2, key_l, _e2) in zip(table, listed.entries):
        if type(key_l) is RandomKey:  # made up: each shaper draws its own
            assert len(key_t) == 16 and int(key_t, 16) >= 0
        else:
            assert key_t == key_l and key_t.startswith("pod-")
    made_up = [k for (_d, k, _h, _e), (_d2, key_l, _e2) in zip(table, listed.entries) if type(key_l) is RandomKey]
    assert len(set(made_up)) == len(made_up)  # the pool's keys in turn: spread over the shards
    sizes = [len(d) + len(k.encode()) for d, k, _h, _e in table]
    assert list(tabled.entries.sizes) == sizes


def test_a_table_goes_as_it_is_and_todo_drops_what_was_done(tmp_path):
    chunk = make_chunk(records(50))
    table = Shaper(Settings(region="us-east-1", stream="s"), tables=True).shape_chunk(chunk).entries
    assert EntryTable.from_shaped(table) is table
    ledger = Ledger(str(tmp_path / "l.ledger"))
    progress = ChunkProgress(ledger, "tag", chunk)
    assert progress.todo(table) is table  # first try: nothing done, no pass over the entries
    progress.done = {0, 7, 49}
    left = progress.todo(table)
    assert [e for *_, e in left] == [i for i in range(50) if i not in {0, 7, 49}]
    assert list(left)[0] == list(table)[1]


@pytest.mark.parametrize("case", ["too_large", "invalid_utf8", "compression"])
def test_what_may_be_rejected_or_compressed_keeps_the_tuple_path(case):
    extra = {"too_large": dict(max_record_bytes=1200), "invalid_utf8": dict(invalid_utf8="dead_letter"),
             "compression": dict(compression="zlib")}[case]
    rows = records(20)
    if case == "too_large":
        rows[3]["log"] = "y" * 2000
    if case == "invalid_utf8":
        rows[3]["log"] = b"\xff\xfe bad"
    shaped = Shaper(Settings(region="us-east-1", stream="s", **extra), tables=True).shape_chunk(make_chunk(rows))
    assert isinstance(shaped.entries, list)
    if case != "compression":
        assert len(shaped.rejected) == 1


def test_differential_corpus_checks_tables_too():
    before = differential.format_counts["tables"]
    rng = random.Random(5)
    for seed in range(40):
        settings_byte = rng.randrange(256) & ~64  # without compression: tables are made
        assert compare(settings_for(settings_byte), make_chunk(records(30, seed))) in (True, False)
    assert differential.format_counts["tables"] - before >= 10


def test_a_large_chunks_table_holds_the_c_output_itself_not_a_copy(monkeypatch):
    """Its data is the fast path's mapping (no copy of megabytes in the thread's
    malloc arena), kept from the next chunks until the table is let go of."""
    from fluentbit_kinesis.pipeline import scratch
    chunk = make_chunk(records(2000))
    listed = Shaper(Settings(region="us-east-1", stream="s")).shape_chunk(chunk).entries
    monkeypatch.setattr(scratch, "_kept", [])
    table = Shaper(Settings(region="us-east-1", stream="s"), tables=True).shape_chunk(chunk).entries
    assert not isinstance(table.data, bytes)
    held = [m for m in scratch._kept if bytes(m[:len(table.data)]) == bytes(table.data)]
    assert held == []  # its mapping is not lent to the next chunk while the table lives
    assert [d for d, *_ in table] == [d for d, *_ in listed]
    data = bytes(table.data)
    table = None
    scratch._take_returned()
    assert any(bytes(m[:len(data)]) == data for m in scratch._kept)  # back once let go of
