"""field_format through the plugin: the ABI test host flushes chunks of the
fixtures into moto, and the records read back with GetRecords are the
reviewed expected output (tests/pipeline/field_format/expected.json); with
the other options, hostile records, counting what cannot be normalized, and
the default left as it was (the fast path)."""
import json
import struct

import msgpack
import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records  # noqa: F401 (read_all de-aggregates)

from fluentbit_kinesis import config
from fluentbit_kinesis.pipeline import fastpath
from fluentbit_kinesis.pipeline.compression import decompress
from fluentbit_kinesis.pipeline.formats import FORMATS
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.pipeline.field_format.fixtures import EVENT_TIME, FIXTURES, SOURCES, expected
from tests.support.harness import base_options, event_time, make_chunk

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2
EXPECTED = expected()
NAMES = list(FIXTURES) + [f"from_{name}" for name in SOURCES]
RECORDS = list(FIXTURES.values()) + list(SOURCES.values())


@pytest.mark.parametrize("field_format", FORMATS)
def test_every_format_through_the_plugin(field_format, kinesis, host):
    stream = kinesis.create_stream()  # one shard: records come back in order
    h = host()
    assert h.init(**base_options(kinesis, stream, field_format=field_format)) == FLB_OK
    assert h.flush(make_chunk(RECORDS, start=EVENT_TIME, step=0.0)) == FLB_OK
    got = [json.loads(data) for data in kinesis.read_all(stream).data]
    assert got == [EXPECTED[field_format][name] for name in NAMES]
    assert h.exit() == FLB_OK
    assert "could not be normalized" not in h.log()


def test_what_cannot_be_normalized_is_sent_as_it_came_and_counted(kinesis, host):
    from tests.telemetry.test_ops import free_port, sample, scrape
    stream = kinesis.create_stream()
    port = free_port()
    h = host()
    assert h.init(**base_options(kinesis, stream, field_format="ecs", metrics_port=port)) == FLB_OK
    nan_time = b"".join(msgpack.packb([float("nan"), {"log": f"no time {i}"}]) for i in range(3))
    fine = make_chunk([{"log": "fine"}])
    several = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "a"}}, {}]}]}]}
    assert h.flush(nan_time + fine + msgpack.packb([1.5, several])) == FLB_OK
    assert h.flush(nan_time) == FLB_OK
    got = [json.loads(data) for data in kinesis.read_all(stream).data]
    assert got[:3] == [{"log": f"no time {i}"} for i in range(3)]  # as they came
    assert got[3]["message"] == "fine" and got[4] == several
    assert sample(scrape(port), "fluentbit_kinesis_records_not_normalized_total") == 7
    warnings = [line for line in h.log().splitlines() if "could not be normalized" in line]
    assert len(warnings) == 1, warnings  # one a minute, with the count
    assert "field_format ecs" in warnings[0] and "(4 records since the last warning, 4 in all)" in warnings[0]


@pytest.mark.parametrize("field_format", ["ocsf", "otel", "csl"])
def test_hostile_records_never_fail_a_flush(field_format, kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, field_format=field_format,
                                 dead_letter_file=tmp_path / "dead.jsonl")) == FLB_OK
    records = [{1: "integer key", b"\xff": "bin key", "log": b"\xff\xfe bin value"},
               {"log": "x", "kubernetes": ["a", "list"], "level": {"nested": "junk"}, "time": float("nan")},
               {"resourceLogs": "junk", "timeUnixNano": {"x": 1}},
               {"class_uid": [], "metadata": {"event_type": None}, "unmapped": "x"},
               {"log": "deep", "n": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]
    chunk = b"".join(msgpack.packb([[event_time(EVENT_TIME), {}], r], use_bin_type=True) for r in records)
    chunk += b"".join(msgpack.packb([t, {"log": "odd time"}]) for t in (float("inf"), 2 ** 63))
    assert h.flush(chunk) == FLB_OK
    contents = kinesis.read_all(stream)
    dead = (tmp_path / "dead.jsonl").read_text().splitlines() if (tmp_path / "dead.jsonl").exists() else []
    # each delivered, or a dead letter as without field_format (a bin map key JSON cannot hold)
    assert len(contents.data) + len(dead) == len(records) + 2
    assert len(dead) <= 1 and all("cannot be encoded as JSON" in line for line in dead)


def test_with_the_other_options(kinesis, host):
    """data_keys, time_key, replace_dots run first; partition_key reads the
    record's own names; log_key names a field of the normalized record;
    aggregation and compression take what it wrote."""
    stream = kinesis.create_stream(shards=2)
    h = host(env={"TZ": "UTC"})
    options = dict(field_format="ecs", data_keys="log,level,kubernetes,stream", time_key="ts",
                   partition_key="kubernetes->pod_name", aggregation="true", compression="zstd")
    assert h.init(**base_options(kinesis, stream, **options)) == FLB_OK
    records = [dict(FIXTURES["kubernetes"], extra="dropped by data_keys", n=i) for i in range(40)]
    assert h.flush(make_chunk(records, start=EVENT_TIME, step=0.0)) == FLB_OK
    contents = kinesis.read_all(stream)
    assert {r.partition_key for r in contents.records} == {"orders-7d9f8b6c5-x2x4q"}
    assert all(r.aggregated for r in contents.records) and len(contents.records) == 40
    [one] = {decompress("zstd", r.data) for r in contents.records}
    out = json.loads(one)
    assert out["message"] == FIXTURES["kubernetes"]["log"] and out["orchestrator"]["namespace"] == "shop"
    assert out["ts"] == "2023-11-14T22:13:20" and "extra" not in out and "n" not in out

    stream2 = kinesis.create_stream()
    assert h.init(1, **base_options(kinesis, stream2, field_format="cim", log_key="_raw", replace_dots="_",
                                    append_newline="true")) == FLB_OK
    record = {"log": "the line", "a.b": {"c.d": 1}}
    assert h.flush(make_chunk([record, {"no": "message"}]), instance=1) == FLB_OK
    assert kinesis.read_all(stream2).data == [b"the line\n"]  # the other has no _raw: a dead letter


def test_a_bad_value_fails_init_with_one_line(kinesis, host):
    h = host()
    assert h.init(**base_options(kinesis, "s", field_format="gelf")) == FLB_ERROR
    line = "option 'field_format': 'gelf' is not valid; allowed: none, ecs, cim, asim, udm, ocsf, cef, leef, csl, otel"
    assert h.log().count(line) == 1


def settings(**extra):
    return config.load({"region": "us-east-1", "stream": "s", **extra}.get)


def test_off_by_default_the_fast_path_stays():
    assert settings().field_format == "none"
    assert Shaper(settings(field_format="none")).normalize is None
    chunk = make_chunk([{"log": "x", "kubernetes": {"pod_name": "p"}}])
    if fastpath.AVAILABLE:
        assert Shaper(settings()).shape_chunk(chunk).path == "fast"
    shaper = Shaper(settings(field_format="ecs"))
    shaped = shaper.shape_chunk(chunk)  # a new shape: the Python path shapes it and makes its plan
    assert shaped.path == ("mixed" if fastpath.AVAILABLE else "python")
    assert json.loads(shaped.entries[0][0])["message"] == "x"
    if fastpath.AVAILABLE:  # then natively (fastformat.py), the same bytes
        again = shaper.shape_chunk(chunk)
        assert again.path == "fast" and again.entries[0][0] == shaped.entries[0][0]


def test_event_time_is_the_chunks(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, field_format="otel")) == FLB_OK
    chunk = msgpack.packb([[msgpack.ExtType(0, struct.pack(">II", 1_700_000_000, 123_456_789)), {}], {"log": "x"}])
    assert h.flush(chunk) == FLB_OK
    [data] = kinesis.read_all(stream).data
    log = json.loads(data)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert log["timeUnixNano"] == "1700000000123456789"  # the EventTime's nanoseconds, exactly


def test_an_otlp_request_of_several_records_through_the_plugin(kinesis, host):
    """otel: one Kinesis record holding every log record, each normalized; in
    another schema the request is sent as it came and counted, never dropped."""
    from tests.pipeline.field_format.test_normalizer import OTLP_REQUEST
    stream = kinesis.create_stream()
    for field_format in ("otel", "ecs"):
        h = host()
        assert h.init(**base_options(kinesis, stream, field_format=field_format)) == FLB_OK
        assert h.flush(make_chunk([OTLP_REQUEST, {"log": f"after, {field_format}"}])) == FLB_OK
        assert h.exit() == FLB_OK
    otel_request, otel_after, ecs_request, ecs_after = [json.loads(d) for d in kinesis.read_all(stream).data]
    bodies = [r["scopeLogs"][0]["logRecords"][0]["body"]["stringValue"] for r in otel_request["resourceLogs"]]
    assert bodies == ["first", "second", "third", "fourth"]
    assert ecs_request == OTLP_REQUEST and ecs_after["message"] == "after, ecs" and "resourceLogs" in otel_after
