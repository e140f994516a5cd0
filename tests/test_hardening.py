"""Hardening (issue 9): poison chunks never raise out of a flush, junk costs
bounded memory and file space, no secret reaches anything the plugin writes,
and the dead-letter file is 0600 and never written through a symbolic link.
All through the ABI test host against moto."""
import json
import math
import socket
import stat
import subprocess
import sys
import textwrap
import urllib.request

import msgpack
import pytest

from tests.support import reliability_report as rr
from tests.support.harness import ROOT, base_options, event_time, make_chunk, numbered_records

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2


def _event(record, timestamp=None):
    return msgpack.packb([[timestamp if timestamp is not None else event_time(1.5), {}], record],
                         use_bin_type=True)


def _deep(levels):
    value = "bottom"
    for _ in range(levels):
        value = {"k": value}
    return value


def _sent_logs(kinesis, stream):
    return sorted(json.loads(d)["log"] if d.startswith(b"{") else d.decode() for d in kinesis.read_all(stream).data)


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- 1. a flush never raises ----------------------------------------------------

POISON = {
    # a bin timestamp of length 0: was an IndexError in events.py
    "empty-bin-time": ({}, bytes.fromhex("92c40080"), "event time is 0 bytes"),
    # log_key values orjson refuses: was a TypeError in shaping
    "log-key-bin-map-key": ({"log_key": "log"}, _event({"log": {b"bin-key": 1}}), "cannot be encoded as JSON"),
    "log-key-too-deep": ({"log_key": "log"}, _event({"log": _deep(300)}), "cannot be encoded as JSON"),
    # a reserved (negative) ext code in metadata, and a record without log_key:
    # was an IndexError in plugin.py (the fast path's indices, msgpack's refusal)
    "reserved-ext-code": ({"log_key": "log"}, bytes.fromhex("92920081a16dd4dc0181a162a179"),
                          "log_key 'log' is not in the record"),
}
# event times that time_key cannot format: were ValueError / OverflowError / struct.error
BAD_TIMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "huge-float": 1e300, "huge-int": 2 ** 63 - 1,
             "negative-huge": -(2 ** 62)}


def _poison_flush(kinesis, host, tmp_path, options, poison, good_as_log_key=False):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, **options)) == FLB_OK
    before, after = numbered_records(5, "before"), numbered_records(5, "after")
    assert h.flush(make_chunk(before) + poison + make_chunk(after)) == FLB_OK
    log = h.log()
    assert "flush failed" not in log, log
    expected = sorted(r["log"] for r in before + after)
    return h, stream, dead, expected


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_record_is_a_dead_letter_and_the_rest_is_delivered(kinesis, host, tmp_path, name):
    options, poison, reason = POISON[name]
    h, stream, dead, expected = _poison_flush(kinesis, host, tmp_path, options, poison)
    assert _sent_logs(kinesis, stream) == expected
    letters = rr.dead_letters(dead)
    assert len(letters) == 1 and reason in letters[0]["reason"], letters
    assert reason in h.log()


@pytest.mark.parametrize("name", sorted(BAD_TIMES))
def test_unformattable_event_time_with_time_key_is_a_dead_letter(kinesis, host, tmp_path, name):
    timestamp = BAD_TIMES[name]
    h, stream, dead, expected = _poison_flush(kinesis, host, tmp_path, {"time_key": "ts"},
                                              _event({"log": "bad-time"}, timestamp))
    sent = [json.loads(d) for d in kinesis.read_all(stream).data]
    assert sorted(r["log"] for r in sent) == expected and all(r["ts"] for r in sent)
    [letter] = rr.dead_letters(dead)
    assert "cannot be formatted" in letter["reason"] and letter["format"] == "msgpack"
    assert msgpack.unpackb(letter["data"]) == {"log": "bad-time"}


def test_malformed_times_are_rejected_per_event(kinesis, host, tmp_path):
    """Times that are no EventTime, integer or float: each a rejected item, the events around them sent."""
    bad = b"".join([_event({"log": "t-str"}, "yesterday"), _event({"log": "t-bin3"}, b"abc"),
                    _event({"log": "t-ext5"}, msgpack.ExtType(5, b"12345678")),
                    msgpack.packb([[], {"log": "t-none"}])])
    h, stream, dead, expected = _poison_flush(kinesis, host, tmp_path, {}, bad)
    assert _sent_logs(kinesis, stream) == expected
    [run] = rr.dead_letters(dead)  # consecutive: one raw run, the bytes as they were
    assert run["format"] == "raw" and run["count"] == 4 and run["data"] == bad
    assert "event time is a str" in run["reason"]


# ---- 2. bounded memory and file space -------------------------------------------

@pytest.mark.parametrize("junk", [b"\xc0", b"\x90"], ids=["nil", "empty-array"])
def test_a_run_of_junk_items_is_one_raw_dead_letter(kinesis, host, tmp_path, junk):
    data = junk * (1024 * 1024)
    h, stream, dead, expected = _poison_flush(kinesis, host, tmp_path, {}, data)
    assert _sent_logs(kinesis, stream) == expected
    lines = dead.read_text().splitlines()
    assert len(lines) == 1
    [run] = rr.dead_letters(dead)
    assert run["format"] == "raw" and run["count"] == len(data) and run["data"] == data
    assert "1048576 records written to dead_letter_file" in h.log()


def test_dead_letters_rotate_mid_stream_under_the_cap(kinesis, host, tmp_path):
    cap = 64 * 1024
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, dead_letter_max_bytes=cap)) == FLB_OK
    junk = b"\xc0" * (1024 * 1024)
    assert h.flush(make_chunk(numbered_records(3)) + junk) == FLB_OK
    rotated = tmp_path / "dead.jsonl.1"
    for path in (dead, rotated):
        assert 0 < path.stat().st_size <= cap
    lines = [json.loads(x) for p in (rotated, dead) for x in p.read_text().splitlines()]
    # one dead letter in parts of (cap/2 - 2048) * 3/4 bytes: 46 of them, two lines per file
    parts = [line["part"] for line in lines]
    assert {line["parts"] for line in lines} == {46} and parts == [43, 44, 45, 46]
    assert all(line["count"] == len(junk) for line in lines)
    assert len(_sent_logs(kinesis, stream)) == 3


# ---- 4. the dead-letter file: 0600, no symbolic link ----------------------------

def _one_bad_chunk(prefix):
    return make_chunk(numbered_records(4, prefix) + [{"nolog": prefix}])


def test_dead_letter_file_is_created_0600_and_rotates_0600(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, log_key="log",
                                 dead_letter_max_bytes=4096)) == FLB_OK
    for i in range(30):
        assert h.flush(_one_bad_chunk(f"c{i}")) == FLB_OK
    rotated = tmp_path / "dead.jsonl.1"
    assert stat.S_IMODE(dead.stat().st_mode) == 0o600 and stat.S_IMODE(rotated.stat().st_mode) == 0o600
    assert dead.stat().st_size <= 4096 and rotated.stat().st_size <= 4096
    assert msgpack.unpackb(rr.dead_letters(dead)[-1]["data"]) == {"nolog": "c29"}


def test_symlink_at_the_dead_letter_path_is_refused_and_nothing_is_lost(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    victim = tmp_path / "victim"
    victim.write_text("")
    dead.symlink_to(victim)
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, log_key="log")) == FLB_OK
    chunk = _one_bad_chunk("s")
    assert h.flush(chunk) == FLB_RETRY
    assert victim.read_text() == ""
    lines = h.log().splitlines()
    assert len([x for x in lines if "symbolic link" in x]) == 1, lines
    assert len([x for x in lines if "error" in x.lower()]) == 1, lines
    dead.unlink()
    assert h.flush(chunk) == FLB_OK
    assert _sent_logs(kinesis, stream) == [f"s-{i:07d}" for i in range(4)]
    [letter] = rr.dead_letters(dead)
    assert msgpack.unpackb(letter["data"]) == {"nolog": "s"} and not dead.is_symlink()


def test_rotation_replaces_a_symlink_at_file_1_instead_of_following_it(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    rotated = tmp_path / "dead.jsonl.1"
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    rotated.symlink_to(victim)
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, log_key="log",
                                 dead_letter_max_bytes=4096)) == FLB_OK
    for i in range(30):
        assert h.flush(_one_bad_chunk(f"r{i}")) == FLB_OK
    assert victim.read_text() == "keep me\n"
    assert not rotated.is_symlink() and stat.S_IMODE(rotated.stat().st_mode) == 0o600
    assert rr.dead_letters(rotated) and all(x["format"] == "msgpack" for x in rr.dead_letters(rotated))


# ---- 3. no secret in anything the plugin writes ---------------------------------

ACCESS_KEY = "AKIAPLANTEDKEY000042"
SECRET_KEY = "PlantedSecretKey/Zz9+Yy8Xx7Ww6Vv5Uu4Tt3S"  # 40 characters, as AWS's
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEPlantedSessionToken" + "Ab9/+" * 30
EXTERNAL_ID = "PlantedExternalId-7731"
PROXY_PASSWORD = "pl@nted/ProxyPass"
PROXY_ENCODED = "pl%40nted%2FProxyPass"
PLANTED = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, EXTERNAL_ID, PROXY_PASSWORD, PROXY_ENCODED,
           "PlantedSessionToken", "nted/ProxyPass", "ProxyPass")


def _assert_no_secret(where, text):
    for secret in PLANTED:
        assert secret not in text, f"{secret!r} in {where}:\n{text[:3000]}"


def _metrics_page(port):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def test_planted_secrets_appear_nowhere_under_every_error_path(kinesis, host, tmp_path):
    written = {}  # where -> text: everything the plugin wrote
    credentials = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, "session_token": SESSION_TOKEN}
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    blocker = socket.socket()  # bound, never listening: connections to it are refused
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    metrics_port = _closed_port()  # after the blocker: a port released first could be the blocker's

    # service errors that quote the request (token and Authorization), at start and on flushes;
    # every host here sends the same chunk again: no ledger, or it would skip the chunk as a replay
    credentials = dict(credentials, ledger_path="off")
    h = host(env={"FLB_LOG_LEVEL": "debug"})
    kinesis.front.faults.quote_request = ("400 Bad Request", "InvalidSignatureException")
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, metrics_port=metrics_port, max_retries=1,
                                 backoff_increment="10ms", log_key="log", **credentials)) == FLB_OK
    assert SESSION_TOKEN in kinesis.front.counters.quoted  # the answer really quoted it
    chunk = make_chunk(numbered_records(5, "sec") + [{"nolog": "a dead letter"}])
    assert h.flush(chunk) == FLB_RETRY
    written["metrics after InvalidSignatureException"] = page = _metrics_page(metrics_port)
    assert "InvalidSignatureException" in page
    for status, kind in (("403 Forbidden", "AccessDeniedException"), ("500 Internal Server Error", "InternalFailure"),
                         ("503 Service Unavailable", "ServiceUnavailable")):
        kinesis.front.faults.quote_request = (status, kind)
        assert h.flush(chunk) == FLB_RETRY
        written[f"metrics after {kind}"] = _metrics_page(metrics_port)
    kinesis.front.faults.quote_request = None
    assert h.flush(chunk) == FLB_OK
    assert _sent_logs(kinesis, stream) == [f"sec-{i:07d}" for i in range(5)]
    log = h.log()
    assert "records not delivered" in log and "InvalidSignatureException" in log and "x-amz-security-token" in log
    written["host log (service errors)"] = log

    # proxy URLs: wrong scheme and unencoded @ / at Init; an unreachable proxy on flushes
    for proxy in (f"socks5://user:{PROXY_PASSWORD}@127.0.0.1:{port}",
                  f"http://user:{PROXY_PASSWORD}@127.0.0.1:{port}"):
        bad = host()
        assert bad.init(**base_options(kinesis, stream, http_proxy=proxy)) == FLB_ERROR
        assert "option 'http_proxy'" in bad.log()
        written[f"host log (Init with {proxy.split(':')[0]} proxy)"] = bad.log()
    unreachable = host(env={"FLB_LOG_LEVEL": "debug"})
    assert unreachable.init(**base_options(kinesis, stream, max_retries=0, dead_letter_file=dead,
                                           http_proxy=f"http://user:{PROXY_ENCODED}@127.0.0.1:{port}",
                                           **credentials)) == FLB_OK
    assert unreachable.flush(chunk) == FLB_RETRY
    written["host log (unreachable proxy)"] = unreachable.log()
    assert "records not delivered" in unreachable.log()

    # STS cannot be reached for role_arn (external_id planted)
    sts = host(env={"FLB_LOG_LEVEL": "debug"})
    assert sts.init(**base_options(kinesis, stream, max_retries=0, role_arn="arn:aws:iam::123456789012:role/x",
                                   external_id=EXTERNAL_ID, sts_endpoint=f"http://127.0.0.1:{port}",
                                   **credentials)) == FLB_OK
    assert sts.flush(chunk) == FLB_RETRY
    written["host log (STS down)"] = sts.log()
    assert "cannot get credentials" in sts.log()

    # `check` on a valid config and on a bad proxy URL
    for name, proxy in (("ok", f"http://user:{PROXY_ENCODED}@proxy:3128"),
                        ("bad", f"socks5://user:{PROXY_PASSWORD}@proxy:3128")):
        conf = tmp_path / f"{name}.conf"
        conf.write_text(textwrap.dedent(f"""\
            [OUTPUT]
                Name kinesis
                stream s
                region us-east-1
                access_key_id {ACCESS_KEY}
                secret_access_key {SECRET_KEY}
                session_token {SESSION_TOKEN}
                external_id {EXTERNAL_ID}
                role_arn arn:aws:iam::123456789012:role/x
                http_proxy {proxy}
            """))
        run = subprocess.run([sys.executable, "-m", "fluentbit_kinesis.tools.cli", "check", "-c", str(conf)],
                             capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == (0 if name == "ok" else 1), run.stdout
        written[f"check ({name})"] = run.stdout + run.stderr

    blocker.close()
    for h_ in (h, unreachable, sts):
        h_.close()
    for path in (dead, tmp_path / "dead.jsonl.1"):
        if path.exists():
            written[str(path)] = path.read_text() + "".join(
                x["data"].decode("utf-8", "replace") for x in rr.dead_letters(path))
    assert any(str(dead) == where for where in written)
    for where, text in written.items():
        _assert_no_secret(where, text)
