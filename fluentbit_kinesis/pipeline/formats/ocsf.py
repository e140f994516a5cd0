"""OCSF 1.5.0: each record gets a class of its own kind (Authentication,
HTTP Activity, Network Activity, else the Base Event) with category_uid,
activity_id and type_uid = class_uid * 100 + activity_id, metadata.version
and the profiles whose attributes it uses. Attributes the class does not
have, and objects without their required attributes, go to `unmapped`, with
the record's extras."""
from .schemas import kind_of, merge

VERSION = "1.5.0"
# class_uid, category_uid, class_name, category_name per kind
CLASSES = {"authentication": (3002, 3, "Authentication", "Identity & Access Management"),
           "http": (4002, 4, "HTTP Activity", "Network Activity"),
           "network": (4001, 4, "Network Activity", "Network Activity"),
           "generic": (0, 0, "Base Event", "Uncategorized")}
HTTP_ACTIVITIES = {"CONNECT": 1, "DELETE": 2, "GET": 3, "HEAD": 4, "OPTIONS": 5, "POST": 6, "PUT": 7,
                   "TRACE": 8, "PATCH": 9}
SEVERITIES = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal",
              99: "Other"}
STATUSES = {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}
DIRECTIONS = {0: "Unknown", 1: "Inbound", 2: "Outbound", 3: "Lateral", 99: "Other"}
# the attributes of each class in the 1.5.0 schema (those this plugin can write),
# plus the profiles' (host: device, actor; cloud; container)
_BASE = frozenset({"activity_id", "activity_name", "category_name", "category_uid", "class_name", "class_uid",
                   "message", "metadata", "severity", "severity_id", "status", "status_id", "time", "type_name",
                   "type_uid", "unmapped", "device", "actor", "cloud", "container"})
ATTRIBUTES = {"generic": _BASE,
              "authentication": _BASE | {"user", "src_endpoint", "dst_endpoint", "http_request", "http_response"},
              "network": _BASE | {"src_endpoint", "dst_endpoint", "connection_info", "url"},
              "http": _BASE | {"src_endpoint", "dst_endpoint", "connection_info", "http_request", "http_response"}}
PROFILES = (("device", "host"), ("actor", "host"), ("cloud", "cloud"), ("container", "container"))
_PROFILED = frozenset(name for name, _ in PROFILES)


def _activity(kind, concepts):
    if kind == "authentication":
        return 2 if any(w in str(concepts.get("action", "")).lower() for w in ("logoff", "logout")) else 1
    if kind == "http":
        return HTTP_ACTIVITIES.get(concepts.get("http_method"), 99)
    if kind == "network":
        return 5 if concepts.get("outcome") == "failure" else 6  # Refuse, Traffic
    return 99  # Other


def _incomplete(out, unmapped):
    """Objects missing an attribute their OCSF object requires: filled when
    "unknown" is a value of it, else moved to unmapped."""
    if "device" in out:
        out["device"].setdefault("type_id", 0)  # Unknown
    if "connection_info" in out:
        out["connection_info"].setdefault("direction_id", 0)
    if "cloud" in out and "provider" not in out["cloud"]:
        unmapped["cloud"] = out.pop("cloud")
    image = out.get("container", {}).get("image")
    if image is not None and "uid" not in image:
        unmapped.setdefault("container", {})["image"] = out["container"].pop("image")
        if not out["container"]:
            del out["container"]


def finish(out, concepts, rest, same=False):
    kind = kind_of(concepts)
    class_uid, category_uid, class_name, category_name = CLASSES[kind]
    activity_id = _activity(kind, concepts)
    if kind == "authentication" and "user" in out.get("actor", {}):
        out["user"] = out["actor"].pop("user")
        if not out["actor"]:
            del out["actor"]
    if same:  # an OCSF record's own attributes stay where they are
        merge(out, rest)
        rest = {}
    unmapped = dict(rest)
    _incomplete(out, unmapped)
    allowed = ATTRIBUTES[kind]
    for key in [k for k in out if k not in allowed]:
        unmapped[key] = out.pop(key)
    severity_id = out.get("severity_id")
    if severity_id is None:
        severity = concepts.get("severity")
        severity_id = 99 if severity and severity[1] else 0
    head = {"class_uid": class_uid, "class_name": class_name, "category_uid": category_uid,
            "category_name": category_name, "activity_id": activity_id, "type_uid": class_uid * 100 + activity_id,
            "severity_id": severity_id,
            "severity": SEVERITIES[severity_id] if severity_id != 99 else concepts["severity"][1]}
    out = dict(head, **{k: v for k, v in out.items() if k not in head})
    if "status_id" in out:
        out["status"] = STATUSES[out["status_id"]]
    if "connection_info" in out:
        out["connection_info"]["direction"] = DIRECTIONS.get(out["connection_info"]["direction_id"], "Other")
    metadata = out.setdefault("metadata", {})
    metadata.setdefault("product", {})
    metadata["version"] = VERSION
    profiles = sorted({profile for name, profile in PROFILES if name in out}) if not _PROFILED.isdisjoint(out) else ()
    if profiles:
        metadata["profiles"] = profiles
    if unmapped:
        out["unmapped"] = unmapped
    return out
