"""The ledger across restarts (ledger_path): a new test-host process on the
same ledger directory is handed the same chunk again, as Fluent Bit replays a
chunk from its filesystem storage; the stream is read back and counted. And
the ledger file itself: checksums, torn writes, rotation, permissions."""
import collections
import json
import stat
import time

import pytest

from fluentbit_kinesis.delivery.ledger import Ledger, chunk_key
from tests.support.harness import base_options, make_chunk, numbered_records

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2


def counted(kinesis, stream):
    """log -> copies in the stream (every shard, de-aggregated)."""
    found = collections.Counter()
    for r in kinesis.read_all(stream).everything:
        found[json.loads(r.data)["log"]] += 1
    return found


def assert_exactly_once(records, found):
    missing = [r["log"] for r in records if r["log"] not in found]
    twice = {log: n for log, n in found.items() if n > 1}
    assert not missing and not twice, f"{len(missing)} missing, {len(twice)} duplicated"
    assert len(found) == len(records)


def options(kinesis, stream, ledger, **extra):
    extra.setdefault("max_records_per_request", 100)
    if ledger is not None:
        extra["ledger_path"] = str(ledger)
    return base_options(kinesis, stream, **extra)


def ledger_files(directory):
    return sorted(p for p in directory.iterdir())


# ---- restarts through the ABI ----------------------------------------------------

@pytest.mark.parametrize("aggregation", ["false", "true"])
def test_restart_after_clean_exit_sends_only_the_rest(kinesis, host, tmp_path, aggregation):
    """The first run delivers part of a chunk, answers FLB_RETRY and exits
    cleanly (as on SIGTERM); a new process with the same ledger directory is
    handed the same chunk and sends only the rest, even after a torn write."""
    stream = kinesis.create_stream(shards=2)
    ledger = tmp_path / "ledger"
    extra = dict(aggregation=aggregation, max_retries=1, backoff_increment="1ms",
                 partition_key="k", aggregation_maximum_record_size="4096",
                 max_records_per_request=2 if aggregation == "true" else 100)
    records = numbered_records(1000, "term", k="x")
    for r in records:
        r["k"] = f"pod-{r['n'] % 7}"
    chunk = make_chunk(records)

    first = host()
    assert first.init(**options(kinesis, stream, ledger, **extra)) == FLB_OK
    kinesis.front.faults.script = [None, None, None] + ["5xx"] * 100  # 3 requests, then none
    assert first.flush(chunk) == FLB_RETRY
    assert first.exit() == FLB_OK
    first.close()
    kinesis.front.faults.script = []
    delivered = counted(kinesis, stream)
    assert 0 < len(delivered) < len(records)

    assert stat.S_IMODE(ledger.stat().st_mode) == 0o700
    [ledger_file] = ledger_files(ledger)
    assert stat.S_IMODE(ledger_file.stat().st_mode) == 0o600
    with open(ledger_file, "ab") as f:
        f.write(b"0badc0de 1234")  # a torn last write: ignored on load

    second = host()
    assert second.init(**options(kinesis, stream, ledger, **extra)) == FLB_OK
    assert "1 unfinished chunks from before (1 torn or damaged lines skipped)" in second.log()
    assert second.flush(chunk) == FLB_OK
    fresh = numbered_records(20, "fresh", k="y")
    assert second.flush(make_chunk(fresh)) == FLB_OK
    found = counted(kinesis, stream)
    print(f"\nrestart after clean exit, aggregation {aggregation}: {len(records)} records, "
          f"{len(delivered)} delivered before, {sum(found.values()) - len(found)} duplicated, "
          f"{sum(1 for r in records + fresh if r['log'] not in found)} missing")
    assert_exactly_once(records + fresh, found)


@pytest.mark.parametrize("mode", ["ledger_path", "default", "off"])
def test_restart_after_sigkill_mid_flush_duplicates_at_most_the_request_in_flight(kinesis, host, tmp_path, mode):
    """SIGKILL while a chunk is being delivered under 30% per-entry throttling;
    the new process replays the chunk. With a ledger (a ledger_path, or by
    default the state directory) only the request in flight at the kill (one:
    the host flushes one chunk) can be twice; with ledger_path off, everything
    the first run delivered is sent again."""
    stream = kinesis.create_stream(shards=4)
    ledger = {"ledger_path": tmp_path / "ledger", "default": None, "off": "off"}[mode]
    per_request = 50
    records = numbered_records(3000, "kill")
    chunk = make_chunk(records)
    kinesis.front.faults.entry_throttle_rate = 0.3

    first = host()
    assert first.init(**options(kinesis, stream, ledger, max_records_per_request=per_request,
                                backoff_increment="1ms", max_retries=-1)) == FLB_OK
    path = first.write_chunk(chunk)
    first.proc.stdin.write(f"flush 0 app.log {path}\n")
    first.proc.stdin.flush()
    deadline = time.monotonic() + 60
    while kinesis.front.counters.entries_stored < len(records) // 2:
        assert time.monotonic() < deadline and first.proc.poll() is None
        time.sleep(0.005)
    first.proc.kill()
    first.proc.wait()
    before = sum(counted(kinesis, stream).values())
    assert len(records) // 2 <= before < len(records)

    kinesis.front.faults.entry_throttle_rate = 0.0
    second = host()
    assert second.init(**options(kinesis, stream, ledger, max_records_per_request=per_request)) == FLB_OK
    assert second.flush(chunk) == FLB_OK
    found = counted(kinesis, stream)
    assert all(r["log"] in found for r in records)  # nothing lost
    duplicates = sum(found.values()) - len(records)
    print(f"\nSIGKILL mid-flush, ledger {mode}: {len(records)} records, "
          f"{before} stored before the kill, {duplicates} duplicated, 0 missing, "
          f"{per_request} entries per request")
    if mode == "off":
        assert duplicates >= len(records) // 2
    else:
        assert duplicates <= per_request


def test_workers_share_one_ledger_file_and_a_restart_sends_nothing_twice(kinesis, host, tmp_path):
    """Two chunks flushed at once (workers 2) with 40% of entries failing
    (InternalFailure) and one try each: both answer FLB_RETRY with part
    delivered; after a clean exit a new process replays both, concurrently again."""
    stream = kinesis.create_stream(shards=4)
    ledger = tmp_path / "ledger"
    batches = [numbered_records(1500, f"w{j}") for j in range(2)]
    jobs = [(0, "app.log", make_chunk(b)) for b in batches]
    kinesis.front.faults.entry_internal_rate = 0.4
    first = host()
    assert first.init(**options(kinesis, stream, ledger, max_retries=0)) == FLB_OK
    assert first.flush_concurrently(jobs) == [FLB_RETRY, FLB_RETRY]
    assert first.exit() == FLB_OK
    first.close()
    assert 0 < len(counted(kinesis, stream)) < 3000
    kinesis.front.faults.entry_internal_rate = 0.0
    second = host()
    assert second.init(**options(kinesis, stream, ledger)) == FLB_OK
    assert "2 unfinished chunks from before" in second.log()
    assert second.flush_concurrently(jobs) == [FLB_OK, FLB_OK]
    assert_exactly_once(batches[0] + batches[1], counted(kinesis, stream))


def test_ledger_path_that_cannot_be_used_fails_init_with_one_line(kinesis, host, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for path, expected in [(a_file, f"option 'ledger_path': '{a_file}' is not a directory"),
                           (a_file / "sub", "option 'ledger_path': cannot use")]:
        h = host()
        assert h.init(**base_options(kinesis, "s", ledger_path=str(path))) == FLB_ERROR
        errors = [line for line in h.log().splitlines() if "[error]" in line]
        assert len(errors) == 1 and expected in errors[0], h.log()


# ---- the file ---------------------------------------------------------------------

def test_damaged_lines_are_skipped_and_the_others_stand(tmp_path):
    ledger = Ledger(tmp_path, "kinesis.0")
    keys = [chunk_key("t", bytes([i])) for i in range(3)]
    for i, key in enumerate(keys):
        ledger.record(key, range(i * 10, i * 10 + 5))
    ledger.close()
    [path] = ledger_files(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:-1] + (b"0" if lines[1][-1:] != b"0" else b"1")  # a flipped digit
    path.write_bytes(b"\n".join(lines) + b"1f2e3d4c " + keys[0].hex().encode())  # and a torn tail

    again = Ledger(tmp_path, "kinesis.0")
    assert again.skipped_lines == 2
    assert again.done(keys[0]) == set(range(0, 5))
    assert again.done(keys[1]) == frozenset()  # its only line was damaged: sent again, not lost
    assert again.done(keys[2]) == set(range(20, 25))


def test_rotation_bounds_the_files_and_keeps_unfinished_chunks(tmp_path):
    ledger = Ledger(tmp_path, "kinesis.0", segment_bytes=4096)
    unfinished = chunk_key("t", b"unfinished")
    ledger.record(unfinished, range(0, 100, 2))
    ledger.remember(unfinished, range(0, 100, 2))  # answered FLB_RETRY: kept in memory
    in_flight, live = chunk_key("t", b"in flight"), {7, 8, 9}
    ledger.flushing(in_flight, live)
    ledger.record(in_flight, live)
    for i in range(2000):  # chunks delivered whole: FLB_OK, forgotten in memory
        key = chunk_key("t", str(i).encode())
        ledger.record(key, range(500))
        ledger.forget(key)
    ledger.close()
    files = ledger_files(tmp_path)
    assert [p.name for p in files] == ["kinesis.0.ledger", "kinesis.0.ledger.1"]
    assert all(p.stat().st_size < 2 * 4096 for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)

    again = Ledger(tmp_path, "kinesis.0")
    assert again.done(unfinished) == set(range(0, 100, 2))
    assert again.done(in_flight) == {7, 8, 9}
    assert again.done(chunk_key("t", b"0")) == frozenset()  # delivered long ago: expired
    assert again.done(chunk_key("t", b"1999")) == set(range(500))  # recent: still known
    assert len(again) < 200


def test_memory_holds_ranges_not_sets(tmp_path):
    ledger = Ledger()
    key = chunk_key("t", b"x")
    ledger.remember(key, set(range(8000)) | {-1})
    assert ledger._done[key][1] == [(-1, 7999)]
    assert ledger.done(key) == set(range(-1, 8000))
