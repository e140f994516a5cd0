"""The plugin core, driven through its ABI by the test host against moto."""
import collections
import json

import pytest

from tests.support.harness import base_options, make_chunk, numbered_records

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2


def sent_json(contents):
    return [json.loads(d) for d in contents.data]


def assert_exactly_once(expected_logs, contents):
    got = collections.Counter(json.loads(d)["log"] for d in contents.data)
    missing = [x for x in expected_logs if got[x] == 0]
    twice = [x for x, n in got.items() if n > 1]
    assert not missing, f"{len(missing)} missing, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} duplicated, e.g. {twice[:3]}"
    assert sum(got.values()) == len(expected_logs)


@pytest.mark.parametrize("layout", ["v2", "v1", "v1-int", "v1-float"])
def test_every_record_arrives_once_in_both_chunk_layouts(kinesis, host, layout):
    stream = kinesis.create_stream(shards=2)
    h = host()
    assert h.init(**base_options(kinesis, stream)) == FLB_OK
    records = numbered_records(1200, nested={"a": [1, 2, {"b": None}]}, text="ünïcødé ✓")
    assert h.flush(make_chunk(records, layout)) == FLB_OK
    contents = kinesis.read_all(stream)
    assert_exactly_once([r["log"] for r in records], contents)
    by_log = {json.loads(d)["log"]: json.loads(d) for d in contents.data}
    for r in records[:50]:
        assert by_log[r["log"]] == r  # field by field
    assert h.exit() == FLB_OK


def test_group_markers_are_skipped_and_non_map_bodies_reported(kinesis, host, tmp_path):
    import msgpack
    from tests.support.harness import event_time
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead)) == FLB_OK
    chunk = b"".join([
        msgpack.packb([[-1, {"group": 1}], {"resource": "x"}]),
        msgpack.packb([[msgpack.ExtType(0, b"\xff\xff\xff\xff\x00\x00\x00\x00"), {}], {"g": 1}]),
        msgpack.packb([[event_time(1.5), {}], {"log": "good-1"}]),
        msgpack.packb([[event_time(1.5), {}], "a string body"]),
        msgpack.packb([[event_time(1.5), {}], {"log": "good-2"}]),
        msgpack.packb([[-2, {}], {}]),
    ])
    assert h.flush(chunk) == FLB_OK
    assert sorted(json.loads(d)["log"] for d in kinesis.read_all(stream).data) == ["good-1", "good-2"]
    lines = [json.loads(x) for x in dead.read_text().splitlines()]
    assert [x["reason"] for x in lines] == ["record body is not a map"]
    assert "not a map" in h.log()


def test_partition_key_nested_and_random_fallback_warns_once(kinesis, host):
    stream = kinesis.create_stream(shards=4)
    h = host()
    assert h.init(**base_options(kinesis, stream, partition_key="kubernetes->pod_name")) == FLB_OK
    records = [{"log": f"l{i}", "kubernetes": {"pod_name": f"pod-{i % 5}"}} for i in range(100)]
    records += [{"log": f"m{i}", "kubernetes": {"pod_name": 42}} for i in range(30)]
    records += [{"log": f"n{i}"} for i in range(30)]
    records += [{"log": "long", "kubernetes": {"pod_name": "é" * 300}}]
    assert h.flush(make_chunk(records)) == FLB_OK
    contents = kinesis.read_all(stream)
    keys = {json.loads(r.data)["log"]: r.partition_key for r in contents.records}
    assert all(keys[f"l{i}"] == f"pod-{i % 5}" for i in range(100))
    random_keys = {keys[f"m{i}"] for i in range(30)} | {keys[f"n{i}"] for i in range(30)}
    assert len(random_keys) == 60 and not any(k.startswith("pod-") for k in random_keys)
    assert keys["long"] == "é" * 256
    warnings = [line for line in h.log().splitlines() if "random partition key" in line]
    assert len(warnings) == 1 and "60 records" in warnings[0]


def test_fixed_partition_key(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    h = host()
    assert h.init(**base_options(kinesis, stream, fixed_partition_key="everything")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(20))) == FLB_OK
    assert {r.partition_key for r in kinesis.read_all(stream).records} == {"everything"}


def test_data_keys_time_key_replace_dots_newline(kinesis, host):
    stream = kinesis.create_stream()
    h = host(env={"TZ": "UTC"})
    assert h.init(**base_options(kinesis, stream, data_keys="log,kubernetes.labels", time_key="ts",
                                 time_key_format="%Y-%m-%dT%H:%M:%S.%L|%f", replace_dots="_",
                                 append_newline="true")) == FLB_OK
    record = {"log": "x", "drop": 1, "kubernetes.labels": {"app.name": "web", "l": [{"a.b": 1}]}}
    assert h.flush(make_chunk([record], start=1_700_000_000.123456)) == FLB_OK
    [data] = kinesis.read_all(stream).data
    assert data.endswith(b"}\n")
    assert json.loads(data) == {"log": "x", "kubernetes_labels": {"app_name": "web", "l": [{"a_b": 1}]},
                                "ts": "2023-11-14T22:13:20.123|123456"}


def test_log_key_sends_strings_raw_and_others_as_json(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, log_key="log", dead_letter_file=dead)) == FLB_OK
    records = [{"log": "plain text line"}, {"log": {"nested": True}}, {"log": 7}, {"other": "no log key"}]
    assert h.flush(make_chunk(records)) == FLB_OK
    assert sorted(kinesis.read_all(stream).data) == sorted([b"plain text line", b'{"nested":true}', b"7"])
    [line] = [json.loads(x) for x in dead.read_text().splitlines()]
    assert "log_key 'log' is not in the record" == line["reason"]


def test_two_instances_different_streams_and_clean_exit(kinesis, host):
    s1, s2 = kinesis.create_stream(), kinesis.create_stream(shards=3)
    h = host()
    assert h.init(0, **base_options(kinesis, s1)) == FLB_OK
    assert h.init(1, **base_options(kinesis, s2, partition_key="n")) == FLB_OK
    r1, r2 = numbered_records(300, "one"), numbered_records(400, "two")
    assert h.flush(make_chunk(r1), instance=0) == FLB_OK
    assert h.flush(make_chunk(r2), instance=1) == FLB_OK
    assert_exactly_once([r["log"] for r in r1], kinesis.read_all(s1))
    assert_exactly_once([r["log"] for r in r2], kinesis.read_all(s2))
    assert h.exit(0) == FLB_OK and h.exit(1) == FLB_OK
    assert h.close() == 0


def test_concurrent_flushes_like_workers(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    h = host()
    assert h.init(**base_options(kinesis, stream)) == FLB_OK
    batches = [numbered_records(700, f"w{j}") for j in range(4)]
    rcs = h.flush_concurrently([(0, "app", make_chunk(b)) for b in batches])
    assert rcs == [FLB_OK] * 4
    assert_exactly_once([r["log"] for b in batches for r in b], kinesis.read_all(stream))


def test_requests_respect_entry_and_byte_limits(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, max_records_per_request=7)) == FLB_OK
    records = numbered_records(50)
    assert h.flush(make_chunk(records)) == FLB_OK
    assert kinesis.front.counters.put_records_calls == 8  # ceil(50 / 7)
    assert_exactly_once([r["log"] for r in records], kinesis.read_all(stream))
    big = [{"log": f"big-{i}", "pad": "x" * 900_000} for i in range(12)]
    assert h.flush(make_chunk(big)) == FLB_OK  # 12 x 0.9 MB: one request each under 1 MiB
    assert kinesis.front.counters.put_records_calls == 8 + 12


def test_oversize_record_is_not_truncated_but_dead_lettered(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead)) == FLB_OK
    records = [{"log": "small-1"}, {"log": "huge", "pad": "y" * (1024 * 1024)}, {"log": "small-2"}]
    assert h.flush(make_chunk(records)) == FLB_OK
    assert sorted(json.loads(d)["log"] for d in kinesis.read_all(stream).data) == ["small-1", "small-2"]
    [line] = [json.loads(x) for x in dead.read_text().splitlines()]
    assert "the limit is 1048576" in line["reason"] and line["format"] == "payload"


def test_partial_failures_retry_only_failed_entries(kinesis, host):
    stream = kinesis.create_stream()
    kinesis.front.faults.entry_throttle_rate = 0.3
    h = host()
    # a budget no entry exhausts by chance at 30%: this test is about what is resent
    assert h.init(**base_options(kinesis, stream, backoff_increment="10ms", max_retries=30)) == FLB_OK
    records = numbered_records(1000)
    assert h.flush(make_chunk(records)) == FLB_OK
    counters = kinesis.front.counters
    assert counters.entries_failed > 100
    # each entry is received once, plus once more per injected failure
    assert counters.entries_received == 1000 + counters.entries_failed
    assert_exactly_once([r["log"] for r in records], kinesis.read_all(stream))


def test_retry_budget_exhausted_returns_retry_then_resends_only_the_rest(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, max_retries=1, backoff_increment="1ms",
                                 max_records_per_request=100)) == FLB_OK
    records = numbered_records(300)
    chunk = make_chunk(records)
    # first request goes through, then every request of this flush fails (a throttled one would be paced)
    kinesis.front.faults.script = [None, "5xx", "5xx", "5xx", "5xx"]
    assert h.flush(chunk) == FLB_RETRY
    kinesis.front.faults.script = []
    assert h.flush(chunk) == FLB_OK  # Fluent Bit's retry of the same chunk
    assert_exactly_once([r["log"] for r in records], kinesis.read_all(stream))


@pytest.mark.parametrize("option,value,expected", [
    ("aggregation", "maybe", "option 'aggregation': 'maybe' is not a boolean; allowed: true, false"),
    ("compression", "lz4", "option 'compression': 'lz4' is not valid; allowed: none, zlib, gzip, zstd"),
    ("max_records_per_request", "501", "option 'max_records_per_request': '501' is not valid; "
                                       "allowed: a whole number from 1 to 500"),
    ("http_request_timeout", "-3", "option 'http_request_timeout'"),
    ("partition_key", "a->", "option 'partition_key'"),
    ("experimental_concurrency", "11", "option 'experimental_concurrency'"),
    ("endpoint", "localhost:4566", "option 'endpoint': 'localhost:4566' is not valid"),
])
def test_invalid_option_fails_init_with_one_clear_line(kinesis, host, option, value, expected):
    h = host()
    assert h.init(**base_options(kinesis, "s", **{option: value})) == FLB_ERROR
    errors = [line for line in h.log().splitlines() if "[error]" in line]
    assert len(errors) == 1 and expected in errors[0], h.log()


def test_missing_stream_and_region_fail_init(host):
    h = host()
    assert h.init(0, region="us-east-1") == FLB_ERROR
    assert h.init(1, stream="x") == FLB_ERROR
    log = h.log()
    assert "option 'stream' is required" in log and "option 'region' is required" in log


def test_secrets_never_logged(kinesis, host):
    stream = kinesis.create_stream()
    h = host(env={"FLB_LOG_LEVEL": "debug"})
    assert h.init(**base_options(kinesis, stream, access_key_id="AKIAEXAMPLESECRET1",
                                 secret_access_key="very-secret-key-value", session_token="tok-secret")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(3))) == FLB_OK
    log = h.log()
    assert "very-secret-key-value" not in log and "tok-secret" not in log and "AKIAEXAMPLESECRET1" not in log


def test_log_level_honoured(kinesis, host):
    stream = kinesis.create_stream()
    quiet = host()
    quiet.configure(0, log_level="error")
    assert quiet.init(**base_options(kinesis, stream)) == FLB_OK
    assert "[ info]" not in quiet.log()
    env_level = host(env={"FLB_LOG_LEVEL": "error"})
    assert env_level.init(**base_options(kinesis, stream)) == FLB_OK
    assert "[ info]" not in env_level.log()
    loud = host()
    assert loud.init(**base_options(kinesis, stream)) == FLB_OK
    assert "[ info] [output:kinesis:kinesis.0] ready" in loud.log()


def test_unreachable_stream_at_start_is_one_line_then_retry(kinesis, host):
    h = host()
    assert h.init(**base_options(kinesis, "does-not-exist", max_retries=0)) == FLB_OK
    assert "cannot describe stream does-not-exist" in h.log()
    assert h.flush(make_chunk(numbered_records(5))) == FLB_RETRY
    kinesis.client.create_stream(StreamName="does-not-exist", ShardCount=1)
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
    assert len(kinesis.read_all("does-not-exist").data) == 5
