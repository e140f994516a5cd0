"""Delivery guarantees under faults and bad input (issue #4).

Every scenario counts what went in against what came out (stream + dead-letter
file): nothing missing, nothing twice, and the plugin still serving after.
The scenarios live in tests/support/reliability_report.py, which also prints the
figures for RELIABILITY.md."""
import json
import socket
import time

import pytest
import urllib3

from tests.support import reliability_report as rr
from tests.support.harness import REGION, base_options, make_chunk, numbered_records

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2


def assert_exact(figures, dead_lettered=0, duplicated=0):
    assert figures.missing == 0, figures
    assert figures.duplicated == duplicated, figures
    assert figures.dead_lettered == dead_lettered, figures
    assert figures.unexpected == 0, figures
    assert figures.delivered == figures.sent - dead_lettered, figures


# ---- the front's faults really happen -----------------------------------------

def test_front_reset_reaches_the_client_as_a_connection_reset(kinesis):
    stream = kinesis.create_stream()
    kinesis.front.faults.script = ["reset"]
    pool = urllib3.PoolManager()
    body = json.dumps({"StreamName": stream, "Records": [{"Data": "eA==", "PartitionKey": "k"}]})
    with pytest.raises(urllib3.exceptions.ProtocolError) as caught:
        pool.urlopen("POST", kinesis.url, body=body, retries=False,
                     headers={"X-Amz-Target": "Kinesis_20131202.PutRecords",
                              "Content-Type": "application/x-amz-json-1.1"})
    assert isinstance(caught.value.args[1], ConnectionResetError), caught.value
    assert kinesis.front.counters.resets == 1


@pytest.mark.parametrize("name", list(rr.FAULTS))
def test_fault_nothing_lost_nothing_twice(kinesis, host, tmp_path, name):
    figures = rr.fault_scenario(kinesis, host, tmp_path, name)
    assert_exact(figures)
    notes = figures.notes
    # the fault really happened, and only failed entries were sent again
    assert notes["entries_failed"] + notes["requests_failed"] + notes["resets"] > 0, notes
    assert notes["entries_stored"] == figures.sent - 20, notes


def test_answers_slower_than_the_timeout_and_lost_are_sent_once(kinesis, host, tmp_path):
    figures = rr.slow_scenario(kinesis, host, tmp_path, lost=True)
    assert_exact(figures)
    assert figures.stored_late == 0


def test_answer_slower_than_the_timeout_but_stored_is_the_one_duplicate_edge(kinesis, host, tmp_path):
    figures = rr.slow_scenario(kinesis, host, tmp_path, lost=False)
    assert figures.missing == 0
    assert figures.stored_late == 100  # one request of 100 was stored after the client gave up
    assert figures.duplicated == figures.stored_late  # at-least-once: exactly those, no others


@pytest.mark.parametrize("max_retries", [2, -1])
def test_endpoint_down_for_seconds(kinesis, host, tmp_path, max_retries):
    figures = rr.down_scenario(kinesis, host, tmp_path, 3.0, max_retries)
    assert_exact(figures)
    if max_retries == -1:
        assert figures.retries == 0  # kept retrying inside the flush
    else:
        assert figures.retries > 0


# ---- retries and the ledger ---------------------------------------------------

def test_partial_success_then_flb_retry_resends_only_the_rest(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**rr.options(kinesis, stream, max_retries=0, max_records_per_request=100)) == FLB_OK
    records = numbered_records(500)
    chunk = make_chunk(records)
    kinesis.front.faults.script = [None, "5xx", None, "reset", None]
    assert h.flush(chunk) == FLB_RETRY
    assert kinesis.front.counters.entries_stored == 300
    kinesis.front.faults.entry_internal_rate = 0.5  # (a throttled entry would be paced, not failed)
    assert h.flush(chunk) == FLB_RETRY  # some of the 200 left go through
    stored = kinesis.front.counters.entries_stored
    assert 300 < stored < 500
    kinesis.front.faults.entry_internal_rate = 0
    received = kinesis.front.counters.entries_received
    assert h.flush(chunk) == FLB_OK
    assert kinesis.front.counters.entries_received - received == 500 - stored  # only the rest
    assert h.flush(make_chunk(numbered_records(5, "other"))) == FLB_OK
    figures = rr.count(rr.Figures("ledger"), [r["log"] for r in records] +
                       [f"other-{i:07d}" for i in range(5)], kinesis, stream)
    assert_exact(figures)


def test_dead_letters_of_a_retried_chunk_are_written_once(kinesis, host, tmp_path):
    import msgpack
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**rr.options(kinesis, stream, max_retries=0, dead_letter_file=dead)) == FLB_OK
    records = numbered_records(10) + [{"log": "huge", "pad": "x" * (1024 * 1024)}]
    chunk = make_chunk(records) + msgpack.packb([1.0, "not a map"]) + b"\xc1corrupt tail"
    kinesis.front.faults.script = ["5xx"]  # the first try sends nothing at all
    assert h.flush(chunk) == FLB_RETRY
    assert h.flush(chunk) == FLB_OK
    reasons = [json.loads(x)["reason"] for x in dead.read_text().splitlines()]
    assert len(reasons) == 3, reasons
    assert any("limit is" in r for r in reasons) and "record body is not a map" in reasons
    assert any("corrupt chunk" in r for r in reasons)
    figures = rr.count(rr.Figures("dl"), [r["log"] for r in records], kinesis, stream, dead)
    assert figures.missing == 0 and figures.duplicated == 0 and figures.dead_lettered == 1


def test_dead_letter_write_failure_returns_retry_and_loses_nothing(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "missing-dir" / "dead.jsonl"
    h = host()
    assert h.init(**rr.options(kinesis, stream, dead_letter_file=dead)) == FLB_OK
    records = numbered_records(10) + [{"log": "huge", "pad": "x" * (1024 * 1024)}]
    chunk = make_chunk(records)
    assert h.flush(chunk) == FLB_RETRY
    assert "cannot write 1 dead letters" in h.log()
    dead.parent.mkdir()
    assert h.flush(chunk) == FLB_OK
    figures = rr.count(rr.Figures("dl"), [r["log"] for r in records], kinesis, stream, dead)
    assert_exact(figures, dead_lettered=1)


def test_dead_letter_file_rotates_at_its_cap(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**rr.options(kinesis, stream, dead_letter_file=dead, dead_letter_max_bytes=4096,
                               log_key="missing")) == FLB_OK
    for i in range(20):  # no record has log_key: every one is a dead letter
        assert h.flush(make_chunk(numbered_records(5, f"b{i}"))) == FLB_OK
    rotated = tmp_path / "dead.jsonl.1"
    assert rotated.exists() and dead.exists()
    assert dead.stat().st_size <= 4096 and rotated.stat().st_size <= 4096
    kept = rr.dead_letter_logs(dead)
    assert "b19-0000004" in kept and "b0-0000000" not in kept  # newest kept; oldest rotated away
    assert len(kept) == len(set(kept))


def test_no_dead_letter_file_drops_with_a_counted_error_line(kinesis, host, tmp_path):
    figures = rr.bad_input_scenario(kinesis, host, tmp_path, dead=False)
    assert figures.missing == len(figures.notes["bad"])  # dropped, but said so
    assert figures.duplicated == 0
    errors = [line for line in figures.notes["log"].splitlines() if "dropped" in line]
    assert len(errors) == 1 and "dropped 2 records" in errors[0] and "2 in all" in errors[0]


# ---- bad input ------------------------------------------------------------------

def test_bad_input_never_crashes_and_good_records_arrive(kinesis, host, tmp_path):
    figures = rr.bad_input_scenario(kinesis, host, tmp_path)
    assert figures.missing == 0 and figures.duplicated == 0 and figures.unexpected == 0, figures
    assert figures.dead_lettered == 2  # the 1000-level record and the 10 MiB one
    assert figures.retries == 0


@pytest.mark.parametrize("truncated", [False, True])
def test_corrupt_or_truncated_chunk_keeps_the_good_events(kinesis, host, tmp_path, truncated):
    figures = rr.corrupt_scenario(kinesis, host, tmp_path, truncated)
    assert figures.missing == 0 and figures.duplicated == 0
    assert figures.unexpected == 1  # the undecodable rest, kept raw in the dead-letter file
    [line] = [json.loads(x) for x in figures.notes["dead_lines"]]
    assert line["format"] == "raw"
    assert ("truncated" in line["reason"]) == truncated


def test_unreachable_endpoint_retries_without_crashing(kinesis, host):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    h = host()
    assert h.init(region=REGION, stream="s", endpoint=f"http://127.0.0.1:{port}", max_retries=1,
                  backoff_increment="1ms") == FLB_OK
    assert "cannot describe stream s" in h.log()
    assert h.flush(make_chunk(numbered_records(5))) == FLB_RETRY
    assert h.flush(make_chunk(numbered_records(5))) == FLB_RETRY
    assert h.exit() == FLB_OK


def test_no_credentials_at_start_is_one_clear_line_then_retry(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    h = host(env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                  "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                  "AWS_CONFIG_FILE": str(tmp_path / "none")})
    assert h.init(**rr.options(kinesis, stream, max_retries=2)) == FLB_OK
    errors = [line for line in h.log().splitlines() if "[error]" in line]
    assert len(errors) == 1 and f"cannot describe stream {stream}" in errors[0], h.log()
    assert h.flush(make_chunk(numbered_records(5))) == FLB_RETRY  # kept by Fluent Bit, not lost
    assert "no AWS credentials found" in h.log()
    assert kinesis.front.counters.put_records_calls == 0
    assert h.exit() == FLB_OK


def test_broken_credentials_provider_is_not_a_crash(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    h = host(env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                  "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                  "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://bad"})
    assert h.init(**rr.options(kinesis, stream)) == FLB_OK
    assert h.flush(make_chunk(numbered_records(5))) == FLB_RETRY
    assert "cannot get credentials" in h.log()
    assert h.exit() == FLB_OK


# ---- SEND_FAILURE_TIMEOUT -------------------------------------------------------

def test_send_failure_timeout_exits_the_process_with_a_clear_error(kinesis, host):
    stream = kinesis.create_stream()
    h = host(env={"SEND_FAILURE_TIMEOUT": "1500ms"})
    assert h.init(**rr.options(kinesis, stream, max_retries=-1)) == FLB_OK
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK  # no failure yet: no timer
    kinesis.front.faults.down_until = time.monotonic() + 60
    with pytest.raises(AssertionError, match="host died"):
        h.flush(make_chunk(numbered_records(5, "x")))
    assert h.proc.wait(10) == 1
    assert "over SEND_FAILURE_TIMEOUT (1.5 s): exiting with status 1" in h.log()


def test_send_failure_timeout_off_by_default(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**rr.options(kinesis, stream, max_retries=1)) == FLB_OK
    kinesis.front.faults.down_until = time.monotonic() + 2.5
    assert h.flush(make_chunk(numbered_records(5))) == FLB_RETRY
    time.sleep(2.6)
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
    assert h.proc.poll() is None


# ---- memory ----------------------------------------------------------------------

def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def test_memory_plateaus_while_the_endpoint_is_down(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**rr.options(kinesis, stream, max_retries=0)) == FLB_OK
    kinesis.front.faults.down_until = time.monotonic() + 3600
    samples = []
    for i in range(900):  # distinct chunks: the ledger fills to its bound (256) and stays there
        assert h.flush(make_chunk(numbered_records(200, f"m{i}"))) == FLB_RETRY
        if i % 150 == 149:
            samples.append(_rss_kib(h.proc.pid))
    print("VmRSS KiB after 150..900 failing flushes:", samples)
    # after the ledger is full (sample 2 on), RSS stays within 8 MiB
    assert max(samples[2:]) - samples[2] < 8 * 1024, samples


def test_ledger_is_bounded():
    from fluentbit_kinesis.delivery.ledger import Ledger
    ledger = Ledger(max_chunks=256)
    for i in range(1000):
        ledger.remember(i.to_bytes(4, "big"), range(100))
    assert len(ledger) == 256
    assert ledger.done((999).to_bytes(4, "big")) and not ledger.done((0).to_bytes(4, "big"))


# ---- the headline ----------------------------------------------------------------

@pytest.mark.slow
def test_headline_100k_records_under_every_fault_arrive_exactly_once(kinesis, host, tmp_path):
    figures = rr.headline_scenario(kinesis, host, tmp_path)
    print(figures.row(), figures.notes)
    assert_exact(figures)
    notes = figures.notes
    assert notes["entries_failed"] > 15_000 and notes["requests_failed"] > 0 and notes["resets"] > 0, notes
    assert figures.retries > 0  # the 30 s outage outlasted a flush's retry budget
