"""Flushes on Fluent Bit's engine thread (an output's default `workers 0`).

The test host runs each flush on the thread that called Init, as Fluent Bit's
engine does, and counts the flushes that held that thread longer than a bound
(FLB_HOST_BLOCK_BOUND_MS): while it is held, Fluent Bit runs no input and no
other output. Through an outage the count must stay 0, and afterwards every
record must be in the stream exactly once. A chunk is answered OK only once
it is delivered or durably kept in the hand-off spool, which is on by default
(the state directory: STATE_DIRECTORY here, set per test by the harness).
"""

import subprocess
import time
from pathlib import Path

import pytest

from tests.support import reliability_report as rr
from tests.support.harness import make_chunk, numbered_records
from tests.delivery.test_reliability import assert_exact

FLB_OK, FLB_RETRY = 1, 2
BOUND_MS = 1000  # the plugin waits at most 0.2 s; the rest is slack for a loaded machine
ENGINE = {"FLB_HOST_ENGINE_THREAD": "1", "FLB_HOST_BLOCK_BOUND_MS": str(BOUND_MS)}
ANNOUNCEMENT = "chunks are delivered from a background queue"


def engine_stats(h):
    flushes, over, longest, _cmt_calls = (int(x) for x in h.command("stats").split()[1:])
    return flushes, over, longest


def wait_for_stream(kinesis, stream, count, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(kinesis.read_all(stream).data) >= count:
            return
        time.sleep(0.5)


def wait_for_spool(state, count, timeout=30.0):
    """True once the state directory's spool holds exactly `count` chunks."""
    deadline = time.monotonic() + timeout
    while len(list(state.glob("*.spool/*"))) != count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def flush_through_outage(kinesis, host, fault, seconds=6.0, chunks=12, per_chunk=100, **extra):
    """Flushes a chunk every 0.5 s while `fault` lasts; returns (host, stream, records, answers)."""
    stream = kinesis.create_stream(shards=2)
    h = host(env=ENGINE)
    assert h.init(**rr.options(kinesis, stream, max_retries=2, http_request_timeout=1, **extra)) == FLB_OK
    records = numbered_records(chunks * per_chunk, "engine")
    setattr(kinesis.front.faults, fault, time.monotonic() + seconds)
    answers = []
    for i in range(chunks):
        answers.append(h.flush(make_chunk(records[i * per_chunk:(i + 1) * per_chunk])))
        time.sleep(0.5)
    return h, stream, records, answers


def test_endpoint_down_never_holds_the_engine_and_delivers_exactly_once(kinesis, host):
    h, stream, records, answers = flush_through_outage(kinesis, host, "down_until")
    assert answers == [FLB_OK] * len(answers)  # never RETRY: Retry_Limit 1 would drop a chunk
    assert kinesis.front.counters.resets > 0  # the outage really happened
    flushes, over, longest = engine_stats(h)
    assert (flushes, over) == (len(answers), 0), f"longest flush held the engine {longest} ms"
    wait_for_stream(kinesis, stream, len(records))
    assert h.exit() == FLB_OK
    assert_exact(rr.count(rr.Figures("down"), [r["log"] for r in records], kinesis, stream))
    assert h.log().count(ANNOUNCEMENT) == 1


def test_endpoint_that_never_answers_never_holds_the_engine(kinesis, host):
    h, stream, records, answers = flush_through_outage(kinesis, host, "hang_until")
    assert answers == [FLB_OK] * len(answers)
    assert kinesis.front.counters.resets > 0  # requests were held and never answered
    flushes, over, longest = engine_stats(h)
    assert (flushes, over) == (len(answers), 0), f"longest flush held the engine {longest} ms"
    wait_for_stream(kinesis, stream, len(records))
    assert h.exit() == FLB_OK
    assert_exact(rr.count(rr.Figures("hang"), [r["log"] for r in records], kinesis, stream))


def test_full_hand_off_queue_answers_retry_once_then_waits(kinesis, host):
    """handoff_max_bytes reached: a new chunk gets RETRY (Fluent Bit keeps it);
    offered again, it is waited for, never answered RETRY a second time."""
    stream = kinesis.create_stream()
    h = host(env=ENGINE)
    assert h.init(**rr.options(kinesis, stream, max_retries=1, handoff_max_bytes=1024 * 1024)) == FLB_OK
    records = numbered_records(3 * 1500, "full", pad="x" * 250)
    chunks = [make_chunk(records[i:i + 1500]) for i in range(0, len(records), 1500)]
    assert all(400_000 < len(c) < 500_000 for c in chunks)
    kinesis.front.faults.down_until = time.monotonic() + 4.0
    assert h.flush(chunks[0]) == FLB_OK
    assert h.flush(chunks[1]) == FLB_OK
    assert h.flush(chunks[2]) == FLB_RETRY  # would pass the cap
    assert h.flush(chunks[2]) == FLB_OK  # offered again: waits for room (the endpoint comes back)
    flushes, over, _ = engine_stats(h)
    assert (flushes, over) == (4, 1)  # only the wait for room held the engine
    wait_for_stream(kinesis, stream, len(records))
    assert h.exit() == FLB_OK
    assert_exact(rr.count(rr.Figures("full"), [r["log"] for r in records], kinesis, stream))
    assert "hand-off queue full" in h.log()


@pytest.mark.parametrize("stop", ["sigkill", "exit"])
def test_by_default_acknowledged_chunks_survive_a_kill_or_an_exit(kinesis, host, tmp_path, stop):
    """Nothing set but region and stream: a chunk answered OK during an outage
    is in the spool of the default state directory; the next start delivers
    it, exactly once, with no dead letter."""
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    options = rr.options(kinesis, stream, max_retries=1, http_request_timeout=1, dead_letter_file=dead)
    h = host(env=ENGINE)
    assert h.init(**options) == FLB_OK
    assert "durable state (ledger, hand-off spool) in" in h.log()
    records = numbered_records(600, "exit")
    assert h.flush(make_chunk(records[:300])) == FLB_OK
    # The queue delivers in the background: the outage starts only once the
    # first chunk is in the stream and out of the spool (a busy CI was slower).
    wait_for_stream(kinesis, stream, 300)
    assert wait_for_spool(tmp_path / "state", 0)
    kinesis.front.faults.down_until = time.monotonic() + 3600
    assert h.flush(make_chunk(records[300:])) == FLB_OK  # kept in the spool, then acknowledged
    spooled = list((tmp_path / "state").glob("*.spool/*"))
    assert len(spooled) == 1 and spooled[0].stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    if stop == "sigkill":
        h.proc.kill()
        h.proc.wait()
    else:
        started = time.monotonic()
        assert h.exit() == FLB_OK
        assert time.monotonic() - started < 20
        assert "kept in the hand-off spool" in h.log()
    kinesis.front.faults.down_until = 0.0
    again = host(env=ENGINE)
    assert again.init(**options) == FLB_OK
    wait_for_stream(kinesis, stream, len(records))
    assert again.exit() == FLB_OK
    assert list((tmp_path / "state").glob("*.spool/*")) == []
    assert_exact(rr.count(rr.Figures("exit"), [r["log"] for r in records], kinesis, stream, dead))
    assert not dead.exists()


def test_without_durable_state_flushes_wait_for_delivery(kinesis, host, tmp_path):
    """ledger_path off: nothing keeps an acknowledged chunk, so the engine
    waits for each delivery (one warning says so); nothing is lost."""
    stream = kinesis.create_stream()
    h = host(env=ENGINE)
    assert h.init(**rr.options(kinesis, stream, max_retries=1, http_request_timeout=1, ledger_path="off")) == FLB_OK
    records = numbered_records(300, "wait")
    kinesis.front.faults.down_until = time.monotonic() + 3
    answers = [h.flush(make_chunk(records[i * 100:(i + 1) * 100])) for i in range(3)]
    assert answers == [FLB_OK] * 3
    flushes, over, longest = engine_stats(h)
    assert over >= 1 and longest >= 1000  # the engine waited through the outage
    assert h.exit() == FLB_OK
    assert_exact(rr.count(rr.Figures("wait"), [r["log"] for r in records], kinesis, stream))
    log = h.log()
    assert log.count("no durable state (ledger_path off)") == 1
    assert log.count("each flush waits until Kinesis has its records") == 1
    assert not list(tmp_path.glob("state/*"))


@pytest.fixture
def full_disk(tmp_path):
    """The default state directory on a real filesystem with no room left: a
    small tmpfs filled up (needs mount rights: root outside a container)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=64,mode=0700", "tmpfs", str(state)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (a container without mount rights): {mounted.stderr.strip()}")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def fill(directory):
    try:
        with open(directory / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass  # full


def test_a_full_disk_makes_the_engine_wait_not_lose(kinesis, host, full_disk):
    stream = kinesis.create_stream()
    h = host(env=ENGINE)
    assert h.init(**rr.options(kinesis, stream, max_retries=1, http_request_timeout=1)) == FLB_OK
    fill(full_disk)
    records = numbered_records(200, "disk")
    kinesis.front.faults.down_until = time.monotonic() + 3
    assert h.flush(make_chunk(records[:100])) == FLB_OK
    assert h.flush(make_chunk(records[100:])) == FLB_OK
    assert engine_stats(h)[1] >= 1  # waited for the delivery instead of acknowledging early
    assert h.exit() == FLB_OK
    assert_exact(rr.count(rr.Figures("disk"), [r["log"] for r in records], kinesis, stream))
    assert h.log().count("the engine waits for their delivery instead") == 1
    assert list(full_disk.glob("*.spool/*")) == []  # no half-written chunk left behind


def test_a_damaged_spool_file_is_set_aside_and_counted(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    options = rr.options(kinesis, stream, max_retries=1, http_request_timeout=1)
    records = numbered_records(200, "damaged")
    kinesis.front.faults.down_until = time.monotonic() + 3600
    first = host(env=ENGINE)
    assert first.init(**options) == FLB_OK
    assert first.flush(make_chunk(records[:100])) == FLB_OK
    assert first.flush(make_chunk(records[100:])) == FLB_OK
    first.proc.kill()
    first.proc.wait()
    spooled = sorted((tmp_path / "state").glob("*.spool/*"), key=lambda p: p.stat().st_mtime)
    assert len(spooled) == 2
    damaged = bytearray(spooled[1].read_bytes())
    damaged[-10] ^= 0xFF  # one flipped byte in a record
    spooled[1].write_bytes(bytes(damaged))
    kinesis.front.faults.down_until = 0.0
    again = host(env=ENGINE)
    assert again.init(**options) == FLB_OK
    wait_for_stream(kinesis, stream, 100)
    assert again.exit() == FLB_OK
    figures = rr.count(rr.Figures("damaged"), [r["log"] for r in records[:100]], kinesis, stream)
    assert_exact(figures)  # the intact chunk, once; nothing of the damaged one
    aside = list(Path(str(spooled[1].parent) + ".corrupt").iterdir())
    assert [p.read_bytes() for p in aside] == [bytes(damaged)]
    assert "1 damaged files set aside" in again.log()


@pytest.mark.parametrize("stop", ["sigkill", "exit"])
def test_with_ledger_path_acknowledged_chunks_survive_a_kill_or_an_exit(kinesis, host, tmp_path, stop):
    """With an explicit ledger_path a chunk answered OK on the engine thread is kept on
    disk until delivered: the host is killed (or exits) during an outage, and
    a new one on the same ledger_path delivers it at start, with no flush."""
    stream = kinesis.create_stream(shards=2)
    ledger = tmp_path / "ledger"
    options = rr.options(kinesis, stream, max_retries=1, http_request_timeout=1, ledger_path=ledger)
    records = numbered_records(300, "spool")
    kinesis.front.faults.down_until = time.monotonic() + 3600
    first = host(env=ENGINE)
    assert first.init(**options) == FLB_OK
    for i in range(3):
        assert first.flush(make_chunk(records[i * 100:(i + 1) * 100])) == FLB_OK
    spooled = list(ledger.glob("*.spool/*"))
    assert len(spooled) == 3 and all(p.stat().st_mode & 0o777 == 0o600 for p in spooled)
    if stop == "sigkill":
        first.proc.kill()
        first.proc.wait()
    else:
        assert first.exit() == FLB_OK  # drains 5 s into the outage, then keeps the rest
        assert "kept in the hand-off spool" in first.log()
    assert len(list(ledger.glob("*.spool/*"))) == 3
    kinesis.front.faults.down_until = 0.0
    second = host(env=ENGINE)
    assert second.init(**options) == FLB_OK
    wait_for_stream(kinesis, stream, len(records))
    assert second.exit() == FLB_OK
    assert list(ledger.glob("*.spool/*")) == []
    assert_exact(rr.count(rr.Figures("spool"), [r["log"] for r in records], kinesis, stream))


def test_flushes_off_the_engine_thread_are_not_handed_off(kinesis, host):
    stream = kinesis.create_stream()
    h = host()  # flushes on their own threads, as with workers 1
    assert h.init(**rr.options(kinesis, stream)) == FLB_OK
    assert h.flush(make_chunk(numbered_records(10))) == FLB_OK
    assert engine_stats(h)[0] == 0
    assert ANNOUNCEMENT not in h.log()
    assert len(kinesis.read_all(stream).data) == 10


def test_init_twice_for_one_output_stops_the_first_instance(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**rr.options(kinesis, stream)) == FLB_OK
    assert h.init() == FLB_OK  # same context: the host re-inits output 0
    log = h.log()
    assert "Init called again for this output" in log
    assert log.count("stopped after 0 records sent") == 1  # the first instance, not orphaned
    assert h.flush(make_chunk(numbered_records(10))) == FLB_OK
    assert h.exit() == FLB_OK
    assert h.log().count("stopped after") == 2
    assert len(kinesis.read_all(stream).data) == 10
