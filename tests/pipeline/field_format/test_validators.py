"""field_format output against each schema's validator or reference:
OTLP/JSON through opentelemetry-proto's messages and protobuf's JSON mapping;
OCSF 1.5.0 through pydantic-ocsf (every class, built from the OCSF schema JSON
it ships), a strict walk of every attribute name against the same schema, and
py-ocsf-models (the base event and its objects); CEF lines through pycef;
LEEF 2.0 lines by the header's rules. The fixtures are the expected outputs
(expected.json), which test_normalizer.py holds equal to what the plugin
writes."""
import json
import re
import typing

import pytest
from google.protobuf import json_format
from opentelemetry.proto.logs.v1 import logs_pb2

from tests.pipeline.field_format.fixtures import EVENT_NS, expected

EXPECTED = expected()
OCSF_PROFILE_ATTRIBUTES = {"host": {"device", "actor"}, "cloud": {"cloud", "api"},
                           "container": {"container", "namespace_pid"}}


@pytest.mark.parametrize("name", sorted(EXPECTED["otel"]))
def test_otel_is_otlp_json_logs_data(name):
    record = EXPECTED["otel"][name]
    logs = json_format.Parse(json.dumps(record), logs_pb2.LogsData())  # unknown fields fail
    [resource_logs] = logs.resource_logs
    [scope_logs] = resource_logs.scope_logs
    [log] = scope_logs.log_records
    assert log.time_unix_nano == EVENT_NS
    raw = record["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert type(raw["timeUnixNano"]) is str  # a 64-bit integer as JSON text
    if log.severity_number:
        assert 1 <= log.severity_number <= 24 and log.severity_text
    # back to JSON: nothing was lost in the mapping
    again = json_format.MessageToDict(logs)
    assert again["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["timeUnixNano"] == raw["timeUnixNano"]


def test_otel_kubernetes_fields_are_resource_attributes():
    record = EXPECTED["otel"]["kubernetes"]["resourceLogs"][0]
    resource = {a["key"]: a["value"]["stringValue"] for a in record["resource"]["attributes"]}
    assert resource["k8s.pod.name"] == "orders-7d9f8b6c5-x2x4q"
    assert resource["k8s.namespace.name"] == "shop"
    assert resource["k8s.container.name"] == "orders"
    log = record["scopeLogs"][0]["logRecords"][0]
    assert log["severityNumber"] == 17 and log["severityText"] == "error"  # ERROR
    assert log["body"] == {"stringValue": "ERROR failed to connect to db: timeout after 5s"}
    attributes = {a["key"]: a["value"] for a in log["attributes"]}
    assert attributes["log.iostream"] == {"stringValue": "stderr"}
    assert "labels" in str(attributes["kubernetes"])  # unmapped: kept as an attribute (kvlistValue)


# ---- OCSF ------------------------------------------------------------------------

def _ocsf():
    import ocsf.v1_5_0.events as events
    return events, {0: events.BaseEvent, 3002: events.Authentication, 4001: events.NetworkActivity,
                    4002: events.HttpActivity}


def _model_of(annotation):
    from pydantic import BaseModel
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _unknown_attributes(value, model, path=""):
    """Names in `value` that are no attribute of the OCSF object `model`."""
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    wrong = []
    for key, item in value.items():
        if key not in fields:
            wrong.append(path + key)
            continue
        inner = _model_of(fields[key].annotation)
        if inner is not None and type(item) is dict and key != "unmapped":
            wrong += _unknown_attributes(item, inner, f"{path}{key}.")
    return wrong


@pytest.mark.parametrize("name", sorted(EXPECTED["ocsf"]))
def test_ocsf_validates_against_the_schema(name):
    from ocsf.v1_5_0 import objects
    _, classes = _ocsf()
    record = json.loads(json.dumps(EXPECTED["ocsf"][name]))
    model = classes[record["class_uid"]]
    assert record["type_uid"] == record["class_uid"] * 100 + record["activity_id"]
    assert record["metadata"]["version"] == "1.5.0"
    assert record["time"] == EVENT_NS // 1_000_000  # timestamp_t: epoch milliseconds
    # every attribute name is the class's or a listed profile's, at every level
    profiles = set(record["metadata"].get("profiles", []))
    top = {k: v for k, v in record.items()
           if not any(k in OCSF_PROFILE_ATTRIBUTES[p] for p in profiles)}
    assert _unknown_attributes(top, model) == []
    for name_ in set(record) - set(top):
        inner = {"device": objects.Device, "actor": objects.Actor, "cloud": objects.Cloud,
                 "container": objects.Container}[name_]
        assert _unknown_attributes(record[name_], inner) == []
    # pydantic-ocsf reads http_method as an integer enum: the schema's is a string
    # enum (CONNECT, DELETE, GET, ...), checked here against the schema JSON itself
    method = record.get("http_request", {}).pop("http_method", None)
    if method is not None:
        assert method in _http_methods()
    model.model_validate(record)  # types, enums, required attributes, uid rules


def _http_methods():
    import importlib.resources
    schema = json.loads(importlib.resources.files("ocsf").joinpath("schemas/v1_5_0.json").read_text())
    return set(schema["objects"]["http_request"]["attributes"]["http_method"]["enum"])


@pytest.mark.parametrize("name", sorted(EXPECTED["ocsf"]))
def test_ocsf_with_py_ocsf_models(name):
    """py-ocsf-models' BaseEvent (with metadata, product and the common
    attributes) takes every record; it also requires metadata.product.vendor_name,
    which OCSF 1.5.0 marks recommended, not required: a record whose source
    names no vendor fails only that."""
    from pydantic import ValidationError
    from py_ocsf_models.events.base_event import BaseEvent
    record = EXPECTED["ocsf"][name]
    try:
        BaseEvent.model_validate(record)
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [("metadata", "product", "vendor_name")]
        assert "vendor_name" not in record["metadata"]["product"]
        BaseEvent.model_validate(json.loads(json.dumps(record).replace('"product": {}', '"product": {"vendor_name": "x"}')))


def test_ocsf_classes_of_the_fixtures():
    classes = {name: record["class_uid"] for name, record in EXPECTED["ocsf"].items()}
    assert classes["kubernetes"] == 0  # Base Event: an application's log line
    assert classes["nginx"] == 4002  # HTTP Activity
    assert classes["firewall"] == 4001  # Network Activity
    assert classes["authentication"] == 3002  # Authentication
    assert EXPECTED["ocsf"]["firewall"]["activity_id"] == 5  # Refuse: the firewall denied it
    assert EXPECTED["ocsf"]["authentication"]["user"] == {"name": "alice"}


# ---- CEF and LEEF ------------------------------------------------------------------

CEF_HEADER = ("CEF", "deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId", "name", "severity")


def cef_extension(value):
    """A CEF extension value, escaped as the standard says (backslash, equals sign, newline)."""
    text = value if type(value) is str else json.dumps(value) if type(value) in (dict, list) else str(value)
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n")


def cef_line(record):
    """The CEF line of a record in field_format cef: the header's fields, then
    the extension keys (JSON for anything but text and numbers)."""
    def header(value):
        return str(value).replace("\\", "\\\\").replace("|", "\\|")
    extension = cef_extension
    head = "|".join(header(record[k]) for k in CEF_HEADER)
    ext = " ".join(f"{k}={extension(v)}" for k, v in record.items() if k not in CEF_HEADER)
    return f"CEF:{head}|{ext}"  # head starts with the version, 0


@pytest.mark.parametrize("name", sorted(EXPECTED["cef"]))
def test_cef_lines_parse_with_pycef(name):
    import pycef
    record = EXPECTED["cef"][name]
    parsed = pycef.parse(cef_line(record))
    assert parsed is not None, cef_line(record)
    assert parsed["DeviceVendor"] == record["deviceVendor"] and parsed["DeviceProduct"] == record["deviceProduct"]
    assert parsed["Severity"] == str(record["severity"])
    assert int(parsed["rt"]) == EVENT_NS // 1_000_000  # rt: epoch milliseconds, one of CEF's forms
    for key in ("src", "dst", "spt", "dpt", "suser", "act", "outcome", "msg"):
        if key in record:
            assert parsed[key] == cef_extension(record[key]), key  # pycef leaves escapes as they are
    if "severity" in record and type(record["severity"]) is int:
        assert 0 <= record["severity"] <= 10


LEEF_HEADER = ("LEEF", "Vendor", "Product", "Version", "EventID")


@pytest.mark.parametrize("name", sorted(EXPECTED["leef"]))
def test_leef_lines_by_the_header_rules(name):
    record = EXPECTED["leef"][name]
    attributes = "\t".join(f"{k}={v if type(v) is not dict else json.dumps(v)}" for k, v in record.items()
                           if k not in LEEF_HEADER)
    line = "LEEF:2.0|" + "|".join(str(record[k]) for k in LEEF_HEADER[1:]) + "|x09|" + attributes
    match = re.match(r"^LEEF:2\.0\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|x09\|(.*)$", line, re.S)
    assert match, line
    pairs = dict(p.split("=", 1) for p in match.group(5).split("\t"))
    assert pairs["devTime"] == "Nov 14 2023 22:13:20.250 UTC" and pairs["devTimeFormat"] == "MMM dd yyyy HH:mm:ss.SSS z"
    if "sev" in record:
        assert 1 <= record["sev"] <= 10
