"""What each schema needs beyond the table: its fixed fields (ECS's
ecs.version, ASIM's EventCount and EventSchema, UDM's event_type, the CEF and
LEEF headers) and where its extras go (ECS, CIM, ASIM, CEF, LEEF: at the top
as they are; UDM: `additional`; CSL: `AdditionalExtensions`). An extra whose
name the schema already uses goes under `unmapped` instead of replacing it."""
import orjson

ECS_VERSION = "8.17.0"
# ASIM schema and version per kind of event, with its EventType
ASIM = {"authentication": ("Authentication", "0.1.3", "Logon"),
        "http": ("WebSession", "0.2.6", "HTTPsession"),
        "network": ("NetworkSession", "0.2.6", "NetworkSession")}
UDM_EVENT_TYPES = {"authentication": "USER_LOGIN", "http": "NETWORK_HTTP", "network": "NETWORK_CONNECTION",
                   "generic": "GENERIC_EVENT"}
_LOGIN_WORDS = ("login", "logon", "log-in", "log_in", "signin", "sign-in", "authenticat", "logoff", "logout")
_NETWORK = frozenset({"src_ip", "dst_ip", "src_port", "dst_port", "transport"})
_HTTP = frozenset({"http_method", "http_status", "url"})


def kind_of(concepts):
    """authentication, http, network or generic: picks OCSF's class, UDM's
    event_type, ASIM's schema."""
    if "user_name" in concepts:
        category = str(concepts.get("category", "")).lower()
        action = str(concepts.get("action", "")).lower()
        if "authentication" in category or any(word in action for word in _LOGIN_WORDS):
            return "authentication"
    if not _HTTP.isdisjoint(concepts):
        return "http"
    if not _NETWORK.isdisjoint(concepts):
        return "network"
    return "generic"


# what each schema's own writer adds: recomputed, so dropped when a record
# already in that schema is normalized again
GENERATED = {
    "ecs": (("ecs", "version"), ("orchestrator", "type"), ("orchestrator", "resource", "type")),
    "asim": tuple((name,) for name in ("EventCount", "EventStartTime", "EventEndTime", "EventSchema",
                                       "EventSchemaVersion", "EventType")),
    "udm": (("metadata", "event_type"), ("extensions", "auth")),
    "leef": (("devTimeFormat",),),
    "ocsf": tuple((name,) for name in ("class_uid", "class_name", "category_uid", "category_name", "activity_id",
                                       "activity_name", "type_uid", "type_name", "severity", "severity_id",
                                       "status")) + (("metadata", "version"), ("metadata", "profiles"),
                                                     ("connection_info", "direction")),
}
# where a schema keeps extras: read back as extras
EXTRAS = {"ocsf": "unmapped", "udm": "additional", "ecs": "unmapped", "cim": "unmapped", "asim": "unmapped",
          "cef": "unmapped", "leef": "unmapped"}
# ECS field sets: an extra of another type under one of these names would clash with ECS's mapping
ECS_FIELD_SETS = frozenset(
    "agent as client cloud code_signature container data_stream destination device dll dns ecs elf email error "
    "event faas file geo group hash host http interface log macho network observer orchestrator organization os "
    "package pe process registry related risk rule server service source threat tls trace transaction span url "
    "user user_agent vlan volume vulnerability x509".split())


def unwrap(source, record):
    """UDM's security_result is a list: its one entry is read as the table's cells say."""
    if source == "udm":
        results = record.get("security_result")
        if type(results) is list and len(results) == 1 and type(results[0]) is dict:
            return dict(record, security_result=results[0])
    return record


def extras_of(source, target, rest):
    """The extras of a record read from `source`. Into the same schema: its
    own recomputed fields go, the rest stays where it is. Into another: what
    its schema kept as extras (OCSF's unmapped, UDM's additional) are extras."""
    if source == target:
        for path in GENERATED.get(source, ()):
            rest = _without(rest, path)
        return rest
    if source == "otel":  # attributes/KEY, resource/KEY: the attribute's own name
        named = {}
        for key, value in rest.items():
            name = key.split("/", 1)[1] if type(key) is str and key.startswith(("attributes/", "resource/")) else key
            named[name if name not in named else key] = value
        return named
    name = EXTRAS.get(source)
    held = rest.get(name)
    if type(held) is dict:
        rest = {key: value for key, value in rest.items() if key != name}
        taken = {key: value for key, value in held.items() if key in rest}
        rest.update((key, value) for key, value in held.items() if key not in taken)
        if taken:
            rest[name] = taken
    return rest


def _without(mapping, path):
    """mapping without the field at path (copies along the path: the record is not changed)."""
    key = path[0]
    if key not in mapping:
        return mapping
    if len(path) == 1:
        return {k: v for k, v in mapping.items() if k != key}
    child = mapping[key]
    if type(child) is not dict:
        return mapping
    child = _without(child, path[1:])
    if child:
        return dict(mapping, **{key: child}) if type(key) is str else {**mapping, key: child}
    return {k: v for k, v in mapping.items() if k != key}


def merge(out, extras, spill=None, prefix=""):
    """Extras into the record as they are; a name already used goes to `unmapped`."""
    top = spill is None
    spill = {} if top else spill
    for key, value in extras.items():
        held = out.get(key, merge)
        if held is merge:
            out[key] = value
        elif type(held) is dict and type(value) is dict:
            merge(held, value, spill, f"{prefix}{key}.")
        else:
            spill[f"{prefix}{key}"] = value
    if top and spill:
        unmapped = out.setdefault("unmapped", {})
        if type(unmapped) is dict:
            unmapped.update(spill)
        else:
            out["unmapped"] = {"unmapped": unmapped, **spill}
    return out


def ecs(out, concepts, rest, same=False):
    out["ecs"] = {"version": ECS_VERSION}
    if "k8s_pod" in concepts or "k8s_namespace" in concepts:
        orchestrator = out.setdefault("orchestrator", {})
        orchestrator["type"] = "kubernetes"
        if "k8s_pod" in concepts:
            orchestrator["resource"]["type"] = "pod"
    clashing = [k for k, v in rest.items() if k in ECS_FIELD_SETS and type(v) is not dict]
    if clashing:
        rest = dict(rest, unmapped=dict(rest.get("unmapped") or {}, **{k: rest[k] for k in clashing}))
        for key in clashing:
            del rest[key]
    return merge(out, rest)


def cim(out, concepts, rest, same=False):
    return merge(out, rest)


def asim(out, concepts, rest, same=False):
    time_generated = out["TimeGenerated"]
    out.update(EventCount=1, EventStartTime=time_generated, EventEndTime=time_generated)
    kind = kind_of(concepts)
    if kind in ASIM:
        out["EventSchema"], out["EventSchemaVersion"], out["EventType"] = ASIM[kind]
    severity = concepts.get("severity")
    if severity and severity[1] and severity[1] != out.get("EventSeverity"):
        out.setdefault("EventOriginalSeverity", severity[1])
    return merge(out, rest)


def udm(out, concepts, rest, same=False):
    kind = kind_of(concepts)
    out["metadata"]["event_type"] = UDM_EVENT_TYPES[kind]
    if kind == "authentication":
        out["extensions"] = {"auth": {}}
    if "security_result" in out:
        out["security_result"] = [out["security_result"]]
    if same:  # a UDM record's own fields stay where they are
        return merge(out, rest)
    if rest:
        out["additional"] = rest  # a google.protobuf.Struct: in JSON, the object itself
    return out


def _with_header(header, out, rest):
    """The header's fields first; a header field the record brings (a CEF or LEEF source's) is kept."""
    merge(out, rest)
    return dict({k: out.pop(k, v) for k, v in header.items()}, **out)


def cef(out, concepts, rest, same=False):
    header = {"CEF": 0, "deviceVendor": "unknown", "deviceProduct": "unknown", "deviceVersion": "unknown",
              "deviceEventClassId": concepts.get("action") or "log",
              "name": concepts.get("action") or str(concepts.get("message") or "log")[:512],
              "severity": "Unknown"}
    return _with_header(header, out, rest)


def leef(out, concepts, rest, same=False):
    header = {"LEEF": "2.0", "Vendor": "unknown", "Product": "unknown", "Version": "unknown",
              "EventID": concepts.get("action") or "log"}
    out["devTimeFormat"] = "MMM dd yyyy HH:mm:ss.SSS z"
    return _with_header(header, out, rest)


def csl(out, concepts, rest, same=False):
    if same:
        return merge(out, rest)
    if rest:
        out["AdditionalExtensions"] = ";".join(f"{_text(k)}={_extension_value(v)}" for k, v in rest.items())
    return out


def _text(value):
    return value if type(value) is str else _json(value)


def _extension_value(value):
    if type(value) is str and ";" not in value and "=" not in value and "\n" not in value:
        return value
    return _json(value)


def _json(value):
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # invalid UTF-8, nesting past orjson's limit
        return repr(value)


FINISH = {"ecs": ecs, "cim": cim, "asim": asim, "udm": udm, "cef": cef, "leef": leef, "csl": csl}
