"""The normalizer alone: the fixtures give expected.json exactly, a record
already in a schema comes back the same, conversions between schemas,
each schema's time and severity types, and hostile records (never an
exception but NotNormalized, never a change to the record it was given)."""
import copy
import math
import struct

import pytest

from fluentbit_kinesis import config
from fluentbit_kinesis.pipeline.formats import FORMATS, NotNormalized, Normalizer
from fluentbit_kinesis.pipeline.formats.normalizer import TABLE, detect
from tests.pipeline.field_format.fixtures import EVENT_TIME, FIXTURES, SOURCES, expected

EXPECTED = expected()
ALL = {**FIXTURES, **{f"from_{name}": record for name, record in SOURCES.items()}}
EVENT_TIME_BYTES = struct.pack(">II", 1_700_000_000, 250_000_000)


def test_the_option_lists_the_formats():
    assert config.FIELD_FORMATS == ("none",) + FORMATS
    assert TABLE.schemas == ["fluentbit"] + list(FORMATS)


def test_the_table_covers_the_issues_concepts():
    concepts = {name for name, _ in TABLE.concepts}
    assert concepts >= {"time", "message", "severity", "host_name", "host_ip", "src_ip", "src_port", "dst_ip",
                        "dst_port", "transport", "direction", "user_name", "process_name", "process_id", "action",
                        "outcome", "category", "url", "http_method", "http_status", "k8s_namespace", "k8s_pod",
                        "k8s_container", "container_image", "container_id", "cloud_provider", "cloud_region",
                        "cloud_account"}
    for schema in FORMATS:  # each schema has its time field, and every cell names a field
        assert TABLE.cells[schema]["time"], schema
        assert all(cell.path and all(cell.path) for cells in TABLE.cells[schema].values() for cell in cells)


@pytest.mark.parametrize("target", FORMATS)
@pytest.mark.parametrize("name", sorted(ALL))
def test_fixtures_give_the_reviewed_output(target, name):
    record = copy.deepcopy(ALL[name])
    assert Normalizer(target)(EVENT_TIME, record) == EXPECTED[target][name]
    assert Normalizer(target)(EVENT_TIME_BYTES, record) == EXPECTED[target][name]  # EventTime alike
    assert record == ALL[name]  # the record it was given is not changed


@pytest.mark.parametrize("target", FORMATS)
@pytest.mark.parametrize("name", sorted(ALL))
def test_a_record_in_the_schema_comes_back_the_same(target, name):
    normalizer = Normalizer(target)
    once = normalizer(EVENT_TIME, ALL[name])
    assert detect(once) == target
    assert normalizer(EVENT_TIME + 100, once) == once  # its own time, not the event's


def _variants():
    """The fixtures, and each with one value made odd: the compiled shapes must
    give up on exactly what the general way does not take."""
    for record in ALL.values():
        yield record
        for key in record:
            for odd in (123, "", "-", None, {"x": 1}, ["a"], b"bin", float("nan")):
                yield dict(record, **{key: odd}) if type(key) is str else record
        if "kubernetes" in record:
            for key in record["kubernetes"]:
                yield dict(record, kubernetes=dict(record["kubernetes"], **{key: 7}))


@pytest.mark.parametrize("target", FORMATS)
def test_compiled_shapes_give_what_the_general_way_gives(target):
    import orjson
    fast, general = Normalizer(target), Normalizer(target, compile_shapes=False)
    for record in _variants():
        for _ in range(2):  # made, then reused
            try:
                want = orjson.dumps(general(EVENT_TIME, record), default=repr, option=orjson.OPT_NON_STR_KEYS)
            except NotNormalized:
                with pytest.raises(NotNormalized):
                    fast(EVENT_TIME, record)
                continue
            assert orjson.dumps(fast(EVENT_TIME, record), default=repr, option=orjson.OPT_NON_STR_KEYS) == want, record


def test_detection_by_key_fields():
    assert detect({"TimeGenerated": "x", "LogSeverity": "3"}) == "csl"
    assert detect({"TimeGenerated": "x", "EventMessage": "m"}) == "asim"
    assert detect({"metadata": {"event_type": "GENERIC_EVENT"}}) == "udm"
    assert detect({"class_uid": 0}) == "ocsf"
    assert detect({"@timestamp": "x"}) == "ecs"
    assert detect({"_time": 1}) == "cim"
    assert detect({"rt": 1, "deviceVendor": "v"}) == "cef"
    assert detect({"rt": 0.012, "request": "GET /"}) == "fluentbit"  # an access log's request time
    assert detect({"devTime": "x"}) == "leef"
    assert detect({"timeUnixNano": "1"}) == "otel"
    assert detect({"log": "x", "kubernetes": {}}) == "fluentbit"
    assert detect({"metadata": "not a map"}) == "fluentbit"


def test_cim_in_ecs_out():
    out = EXPECTED["ecs"]["from_cim"]
    assert out["@timestamp"] == "2023-11-14T22:13:20.250Z"
    assert out["source"] == {"ip": "10.1.2.3", "port": 49152}
    assert out["destination"] == {"ip": "10.9.8.7", "port": 443}
    assert out["network"] == {"transport": "tcp", "protocol": "https"}
    assert out["event"] == {"outcome": "success", "action": "allowed"}
    assert out["user"] == {"name": "svc-batch"} and out["host"] == {"name": "fw-core-2"}
    assert out["log"] == {"level": "low"}  # the source's own word (ECS: the original level)
    assert out["bytes_in"] == 5120  # no ECS field for it: kept as it is


def test_csl_in_otel_out():
    resource_logs = EXPECTED["otel"]["from_csl"]["resourceLogs"][0]
    log = resource_logs["scopeLogs"][0]["logRecords"][0]
    assert log["timeUnixNano"] == "1700000000250000000"
    assert (log["severityNumber"], log["severityText"]) == (10, "3")  # CEF/CSL 3: Low -> INFO2
    assert log["eventName"] == "allow"
    attributes = {a["key"]: a["value"] for a in log["attributes"]}
    assert attributes["source.address"] == {"stringValue": "10.20.30.40"}
    assert attributes["destination.port"] == {"intValue": "443"}
    assert attributes["network.transport"] == {"stringValue": "tcp"}
    assert attributes["user.name"] == {"stringValue": "corp\\jdoe"}
    assert attributes["DeviceVendor"] == {"stringValue": "Palo Alto Networks"}  # no OTel name: an attribute
    assert attributes["CommunicationDirection"] == {"stringValue": "1"}  # OTel has no direction


def test_ecs_in_ocsf_out_keeps_its_extras_unmapped():
    out = EXPECTED["ocsf"]["from_ecs"]
    assert (out["class_uid"], out["activity_id"], out["type_uid"]) == (4002, 3, 400203)  # HTTP Activity: Get
    assert out["unmapped"] == {"ecs": {"version": "8.11.0"}, "labels": {"team": "web"}}


@pytest.mark.parametrize("target,field,value", [
    ("ecs", ("@timestamp",), "2023-11-14T22:13:20.250Z"),
    ("cim", ("_time",), 1700000000.25),
    ("asim", ("TimeGenerated",), "2023-11-14T22:13:20.250000Z"),
    ("udm", ("metadata", "event_timestamp"), "2023-11-14T22:13:20.250000Z"),
    ("ocsf", ("time",), 1700000000250),
    ("cef", ("rt",), 1700000000250),
    ("leef", ("devTime",), "Nov 14 2023 22:13:20.250 UTC"),
    ("csl", ("TimeGenerated",), "2023-11-14T22:13:20.250000Z"),
])
def test_each_schema_writes_its_own_time_type(target, field, value):
    out = Normalizer(target)(EVENT_TIME, {"log": "x"})
    for key in field:
        out = out[key]
    assert out == value


@pytest.mark.parametrize("level,expected_values", [
    ("debug", {"cim": "informational", "asim": "Informational", "ocsf": 1, "cef": 1, "otel": 5}),
    ("info", {"cim": "informational", "asim": "Informational", "ocsf": 1, "cef": 2, "otel": 9}),
    ("warning", {"cim": "medium", "asim": "Medium", "ocsf": 3, "cef": 5, "otel": 13}),
    ("ERROR", {"cim": "high", "asim": "High", "ocsf": 4, "cef": 8, "otel": 17}),
    ("critical", {"cim": "critical", "asim": "High", "ocsf": 6, "cef": 10, "otel": 21}),
])
def test_severities_on_each_scale(level, expected_values):
    record = {"log": "x", "level": level}
    assert Normalizer("cim")(0, record)["severity"] == expected_values["cim"]
    asim = Normalizer("asim")(0, record)
    assert (asim["EventSeverity"], asim["EventOriginalSeverity"]) == (expected_values["asim"], level)
    assert Normalizer("ocsf")(0, record)["severity_id"] == expected_values["ocsf"]
    assert Normalizer("cef")(0, record)["severity"] == expected_values["cef"]
    log = Normalizer("otel")(0, record)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert (log["severityNumber"], log["severityText"]) == (expected_values["otel"], level)
    assert Normalizer("ecs")(0, record)["log"]["level"] == level


def test_an_unknown_severity_word_is_kept():
    record = {"log": "x", "level": "verbose"}
    assert Normalizer("ecs")(0, record)["log"]["level"] == "verbose"
    ocsf = Normalizer("ocsf")(0, record)
    assert (ocsf["severity_id"], ocsf["severity"]) == (99, "verbose")  # Other: defined by the source
    log = Normalizer("otel")(0, record)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert (log["severityNumber"], log["severityText"]) == (0, "verbose")
    assert Normalizer("cim")(0, record)["level"] == "verbose"  # no CIM value for it: kept as it was


def test_values_that_do_not_fit_stay_as_they_came():
    record = {"log": "x", "src_ip": "not-an-ip", "src_port": "http", "pid": -1, "code": [200]}
    out = Normalizer("ecs")(0, record)
    assert out["src_ip"] == "not-an-ip" and out["src_port"] == "http" and out["pid"] == -1
    assert out["code"] == [200] and out["message"] == "x"


HOSTILE = [
    {1: "integer key", b"\xff": "bin key", (1, 2): "tuple key", "log": b"\xff\xfe bin value"},
    {"log": "x", "kubernetes": ["a", "list"], "level": {"nested": "junk"}, "time": float("nan")},
    {"log": "\udcff invalid utf-8", "host": 12, "user": None, "pid": 2 ** 80, "code": float("inf")},
    {"resourceLogs": "junk"},
    {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "a"}}, {"body": {}}]}]}]},
    {"timeUnixNano": "x", "attributes": "junk", "body": {"kvlistValue": {"values": "junk"}}},
    {"@timestamp": float("nan"), "log": {"level": ["warn"]}, "source": {"ip": {"deep": 1}}},
    {"class_uid": "x", "metadata": {"event_type": 7}, "unmapped": [1]},
    {"TimeGenerated": "2023-13-45T99:00:00Z", "LogSeverity": -5, "AdditionalExtensions": {"a": 1}},
    {"_time": "yesterday", "rt": "Foo 99 2023 xx", "devTime": 10 ** 30},
    {"log": "deep", "n": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
]


@pytest.mark.parametrize("target", FORMATS)
@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_hostile_records_never_raise_anything_else(target, index):
    record = HOSTILE[index]
    before = copy.deepcopy(record) if index != 1 else None  # NaN != NaN
    for timestamp in (EVENT_TIME, EVENT_TIME_BYTES, float("nan"), float("inf"), -1, 2 ** 70):
        try:
            out = Normalizer(target)(timestamp, record)
        except NotNormalized:
            continue
        assert type(out) is dict
    if before is not None:
        assert record == before


def test_what_cannot_be_normalized():
    with pytest.raises(NotNormalized, match="event time"):
        Normalizer("ecs")(float("nan"), {"log": "a plain record has only the event time"})
    out = Normalizer("ecs")(float("nan"), {"@timestamp": "2023-11-14T22:13:20Z", "message": "has its own"})
    assert out["@timestamp"] == "2023-11-14T22:13:20.000Z"
    with pytest.raises(NotNormalized):  # an OTLP request of several records is not one record
        Normalizer("ecs")(0, HOSTILE[4])
    deep = {"log": "x"}
    for _ in range(5000):
        deep = {"a": deep}
    with pytest.raises(NotNormalized, match="RecursionError"):
        Normalizer("otel")(0, deep)


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        Normalizer("gelf")
    assert not math.isnan(EVENT_TIME)


def test_a_plain_records_fields_named_like_otlp_ones_stay_attributes():
    from google.protobuf import json_format
    from opentelemetry.proto.logs.v1 import logs_pb2
    out = Normalizer("otel")(EVENT_TIME, {"log": "x", "flags": "abc", "traceId": 5, "spanId": {"a": 1}})
    json_format.Parse(__import__("json").dumps(out), logs_pb2.LogsData())  # still valid OTLP/JSON
    log = out["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert {a["key"] for a in log["attributes"]} == {"flags", "traceId", "spanId"}


OTLP_REQUEST = {"resourceLogs": [
    {"resource": {"attributes": [{"key": "k8s.pod.name", "value": {"stringValue": "pod-a"}}]},
     "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [
         {"timeUnixNano": "1700000000000000001", "severityNumber": 9, "body": {"stringValue": "first"}},
         {"timeUnixNano": "1700000000000000002", "severityNumber": 17, "severityText": "ERROR",
          "body": {"stringValue": "second"}, "attributes": [{"key": "user.name", "value": {"stringValue": "u"}}]}]},
                   {"logRecords": [{"timeUnixNano": "1700000000000000003", "body": {"stringValue": "third"}}]}]},
    {"resource": {"attributes": [{"key": "k8s.pod.name", "value": {"stringValue": "pod-b"}}]},
     "scopeLogs": [{"logRecords": [{"timeUnixNano": "1700000000000000004", "body": {"stringValue": "fourth"}}]}]}]}


def test_an_otlp_request_of_several_records_is_read_record_by_record():
    """otel: each log record normalized on its own (its resource and scope kept),
    all in one request, a ResourceLogs each; valid OTLP/JSON, in order."""
    from google.protobuf import json_format
    from opentelemetry.proto.logs.v1 import logs_pb2
    before = copy.deepcopy(OTLP_REQUEST)
    normalizer = Normalizer("otel")
    out = normalizer(EVENT_TIME, OTLP_REQUEST)
    assert OTLP_REQUEST == before
    logs = json_format.Parse(__import__("json").dumps(out), logs_pb2.LogsData())
    assert len(logs.resource_logs) == 4
    singles = [{"resourceLogs": [dict(r, scopeLogs=[dict(s, logRecords=[log])])]}
               for r in OTLP_REQUEST["resourceLogs"] for s in r["scopeLogs"] for log in s["logRecords"]]
    assert out["resourceLogs"] == [normalizer(EVENT_TIME, single)["resourceLogs"][0] for single in singles]
    records = [r.scope_logs[0].log_records[0] for r in logs.resource_logs]
    assert [r.body.string_value for r in records] == ["first", "second", "third", "fourth"]
    assert [r.time_unix_nano for r in records] == [1700000000000000001 + i for i in range(4)]
    assert [r.severity_number for r in records] == [9, 17, 0, 0] and records[1].severity_text == "ERROR"
    pods = [{a.key: a.value.string_value for a in r.resource.attributes}["k8s.pod.name"] for r in logs.resource_logs]
    assert pods == ["pod-a", "pod-a", "pod-a", "pod-b"]
    assert logs.resource_logs[0].scope_logs[0].scope.name == "app"


@pytest.mark.parametrize("target", [f for f in FORMATS if f != "otel"])
def test_an_otlp_request_of_several_records_is_sent_as_it_came_in_other_schemas(target):
    """One Kinesis record per event (the ledger counts events): a request of
    several records cannot become several records of another schema; it is
    sent as it came and counted (never dropped), the reason says why."""
    with pytest.raises(NotNormalized, match="an OTLP request with 4 log records"):
        Normalizer(target)(EVENT_TIME, OTLP_REQUEST)
    empty = {"resourceLogs": [{"scopeLogs": [{"logRecords": []}]}]}
    with pytest.raises(NotNormalized, match="with 0 log records"):
        Normalizer(target)(EVENT_TIME, empty)
    with pytest.raises(NotNormalized, match="with 0 log records"):
        Normalizer("otel")(EVENT_TIME, empty)
