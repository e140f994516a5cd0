"""OpenTelemetry logs as OTLP/JSON: each record is a LogsData (the body of an
OTLP/HTTP export request) with one ResourceLogs, one ScopeLogs and one
LogRecord (a request that comes in holding several log records is read
record by record, split_request, and written as one request with a
ResourceLogs per record, join_requests): timeUnixNano as the text of an integer, severityNumber and
severityText, body and attributes as AnyValue and KeyValue lists, the
Kubernetes, container, host and cloud fields as resource attributes (the
semantic conventions' names). Extras become attributes as they are (maps as
kvlistValue)."""
import base64
import math

from .values import LEVEL_WORDS

_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_KEEP = ("observedTimeUnixNano", "traceId", "spanId", "flags", "droppedAttributesCount")  # LogRecord fields
LEVEL_TEXT = {"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "low": "INFO2", "warn": "WARN",
              "error": "ERROR", "fatal": "FATAL"}


def any_value(value):
    """A Python value as an OTLP/JSON AnyValue."""
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        return {"intValue": str(value)} if _INT64[0] <= value <= _INT64[1] else {"stringValue": str(value)}
    if kind is float:
        return {"doubleValue": value if math.isfinite(value) else str(value).replace("inf", "Infinity")
                .replace("nan", "NaN")}
    if kind is dict:
        return {"kvlistValue": {"values": key_values(value)}}
    if kind is list:
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if kind is bytes:
        return {"bytesValue": base64.b64encode(value).decode()}
    if value is None:
        return {}
    return {"stringValue": str(value)}  # ext types


def _key(key):
    if type(key) is str:
        return key
    if type(key) is bytes:
        return key.decode("utf-8", "replace")
    return str(key)


def key_values(mapping):
    return [{"key": k if type(k) is str else _key(k), "value": any_value(v)} for k, v in mapping.items()]


def plain(value):
    """An OTLP/JSON AnyValue -> the Python value (what is not one stays as it is)."""
    if type(value) is not dict or len(value) > 1:
        return value
    if not value:
        return None
    (kind, inner), = value.items()
    if kind in ("stringValue", "boolValue", "doubleValue"):
        return inner
    if kind == "intValue":
        try:
            return int(inner)
        except (TypeError, ValueError):
            return inner
    if kind == "kvlistValue" and type(inner) is dict:
        return from_key_values(inner.get("values", []))
    if kind == "arrayValue" and type(inner) is dict:
        return [plain(v) for v in inner.get("values", [])]
    return value


def from_key_values(items):
    if type(items) is not list:
        return items
    out = {}
    for item in items:
        if type(item) is dict and "key" in item:
            out[item["key"]] = plain(item.get("value", {}))
    return out


def split_request(record):
    """An OTLP/JSON request (LogsData) holding other than one log record: one
    request per log record, each with its resource and scope, in order ([]
    when it holds none); None when it holds one, or is not laid out as one
    (flatten then reads it, or finds it is not one)."""
    resource_logs = record["resourceLogs"]
    if type(resource_logs) is not list:
        return None
    singles = []
    for resource in resource_logs:
        if type(resource) is not dict or type(resource.get("scopeLogs")) is not list:
            return None
        for scope in resource["scopeLogs"]:
            if type(scope) is not dict or type(scope.get("logRecords")) is not list:
                return None
            singles.extend(dict(record, resourceLogs=[dict(resource, scopeLogs=[dict(scope, logRecords=[log])])])
                           for log in scope["logRecords"])
    return None if len(singles) == 1 else singles


def join_requests(requests):
    """Normalized one-record requests as one request: a ResourceLogs each."""
    return {"resourceLogs": [request["resourceLogs"][0] for request in requests]}


def flatten(record):
    """An OTLP/JSON LogsData, or one LogRecord, as one flat map the table's
    cells name: LogRecord fields, attributes/KEY, resource/KEY."""
    resource, scope = {}, None
    if "resourceLogs" in record:
        resource_logs, = record["resourceLogs"]  # one record each: more is not read (ValueError: sent as it is)
        (scope_logs,) = resource_logs["scopeLogs"]
        (log_record,) = scope_logs["logRecords"]
        resource = resource_logs.get("resource", {}).get("attributes", [])
        scope = scope_logs.get("scope") or None
        record = dict(log_record, **({"scope": scope} if scope else {}))
    view = {k: v for k, v in record.items() if k not in ("attributes", "body")}
    if "body" in record:
        view["body"] = plain(record["body"])
    view.update((f"attributes/{k}", v) for k, v in from_key_values(record.get("attributes", [])).items())
    view.update((f"resource/{k}", v) for k, v in from_key_values(resource).items())
    return view


def severity_text(concepts, rest):
    """severityText is the source's own word for the level severityNumber gives."""
    text = rest.pop("severityText", None)
    if type(text) is str and text:
        level = concepts.get("severity", (None, None))[0]
        if level is None:
            level = LEVEL_WORDS.get(text.strip().lower())
        concepts["severity"] = (level, text)


def _add(attributes, name, value):
    """An extra as an attribute; one whose name is taken is kept as unmapped.NAME."""
    attributes[name if name not in attributes else f"unmapped.{_key(name)}"] = value


def _sections(out):
    """The table's otel cells written: (LogRecord fields, resource attributes, attributes)."""
    record, resource, attributes = {}, {}, {}
    for key, value in out.items():
        if key[:9] == "resource/":
            resource[key[9:]] = value
        elif key[:11] == "attributes/":
            attributes[key[11:]] = value
        else:
            record[key] = value
    return record, resource, attributes


def _own_extras(rest, record, resource, attributes):
    """An OTel record's extras (same schema): its LogRecord fields stay, its
    attributes stay attributes of where they were."""
    for key, value in rest.items():
        if key == "scope":
            continue
        if key in _KEEP:
            record[key] = value
        elif type(key) is str and key.startswith("resource/"):
            _add(resource, key[9:], value)
        else:
            _add(attributes, key[11:] if type(key) is str and key.startswith("attributes/") else key, value)


def finish(out, concepts, rest, same=False):
    record, resource, attributes = _sections(out)
    severity = concepts.get("severity")
    if severity:
        record.setdefault("severityNumber", 0)
        record["severityText"] = severity[1] or LEVEL_TEXT[severity[0]]
    if "body" in record:
        record["body"] = {"stringValue": record["body"]}
    if same:
        _own_extras(rest, record, resource, attributes)
    else:
        for key, value in rest.items():
            attributes[key if key not in attributes else f"unmapped.{_key(key)}"] = value
    if attributes:
        record["attributes"] = key_values(attributes)
    scope = {"logRecords": [record]}
    if same and type(rest.get("scope")) is dict:  # the instrumentation scope of an OTel record
        scope = {"scope": rest["scope"], "logRecords": [record]}
    return {"resourceLogs": [{"resource": {"attributes": key_values(resource)}, "scopeLogs": [scope]}]}
