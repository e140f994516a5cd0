"""One record -> the target schema: detect the source schema from its key
fields, read the concepts (what is read leaves the record; the rest are its
extras), write them in the target's names and types, then the target's own
parts (schemas.py, ocsf.py, otel.py) place the extras where the schema keeps
them. Never drops a field: a concept the target cannot hold goes back to the
extras under its source name."""
from . import ocsf, otel, schemas
from .compiled import Shapes
from .table import NESTED, load
from .values import (DIRECTION_WORDS, OUTCOME_WORDS, READERS, TimeWriter, event_ns, read_severity, read_time,
                     read_word)

FORMATS = ("ecs", "cim", "asim", "udm", "ocsf", "cef", "leef", "csl", "otel")
TABLE = load()
FINISH = {"ocsf": ocsf.finish, "otel": otel.finish, **schemas.FINISH}
_ABSENT = (None, "", "-")
CEF_HEADER = frozenset({"deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId"})
# CommonSecurityLog columns ASIM does not have: with TimeGenerated, the record is CSL
CSL_COLUMNS = frozenset({"LogSeverity", "DeviceVendor", "DeviceProduct", "DeviceEventClassID", "Activity",
                         "AdditionalExtensions", "Message", "SourceIP", "DestinationIP", "DeviceAction",
                         "CommunicationDirection", "DeviceName", "RequestURL"})  # nginx and Apache write "-" for a field they do not have


class NotNormalized(ValueError):
    """A record that is sent as it came (counted)."""


def detect(record):
    """The record's source schema from its key fields (the issue's rules), else "fluentbit"."""
    if "resourceLogs" in record or "timeUnixNano" in record or ("body" in record and "severityNumber" in record):
        return "otel"
    if "class_uid" in record:
        return "ocsf"
    metadata = record.get("metadata")
    if type(metadata) is dict and ("event_type" in metadata or "event_timestamp" in metadata):
        return "udm"
    if "TimeGenerated" in record:
        if "EventStartTime" in record or "EventSchema" in record:  # ASIM's own (this writer's too)
            return "asim"
        return "csl" if not CSL_COLUMNS.isdisjoint(record) else "asim"
    if "@timestamp" in record:
        return "ecs"
    if "_time" in record:
        return "cim"
    if "devTime" in record or "LEEF" in record:
        return "leef"
    if "CEF" in record or ("rt" in record and not CEF_HEADER.isdisjoint(record)):
        return "cef"  # rt alone is many access logs' request time
    return "fluentbit"


def _reader_of(kind, schema):
    if kind == "time":
        form = TABLE.settings[("time:format", schema)]
        return lambda value: read_time(value, form)
    if kind == "severity":
        reverse = TABLE.reverse.get(("severity", schema), {})
        return lambda value: read_severity(value, reverse)
    if kind in ("outcome", "direction"):
        reverse = TABLE.reverse.get((kind, schema), {})
        words = OUTCOME_WORDS if kind == "outcome" else DIRECTION_WORDS
        return lambda value: read_word(value, reverse, words)
    return None if kind == "text" else READERS[kind]  # None: text, checked inline


class Reader:
    """Reads one source schema: a trie of its cells, walked along the record's keys."""

    def __init__(self, schema):
        self.schema = schema
        self.trie = {}
        self.convert = {}
        self.absent = _ABSENT if schema == "fluentbit" else (None, "")
        for concept, kind in TABLE.concepts:
            self.convert[concept] = _reader_of(kind, schema)
            for cell in TABLE.cells[schema][concept]:
                self._insert(cell.path, concept)
                if schema in NESTED and len(cell.path) > 1:
                    self.trie.setdefault(".".join(cell.path), concept)  # ECS as ecs-logging writes it
        self.trie.pop("", None)

    def _insert(self, path, concept):
        node = self.trie
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if type(node) is not dict:
                return
        node.setdefault(path[-1], concept)

    def read(self, record):
        """(concepts, where each came from, the rest of the record)."""
        concepts, sources = {}, {}
        rest = self._walk(record, self.trie, concepts, sources, ())
        return concepts, sources, rest

    def _walk(self, record, trie, concepts, sources, path):
        rest = {}
        absent = self.absent
        for key, value in record.items():
            entry = trie.get(key)
            if entry is None:
                rest[key] = value
            elif type(entry) is dict:
                if type(value) is dict and value:
                    inner = self._walk(value, entry, concepts, sources, path + (key,))
                    if inner:
                        rest[key] = inner
                else:
                    rest[key] = value
            elif value in absent:
                if value != "-":  # nginx's and Apache's mark of a missing field: read as missing
                    rest[key] = value
            elif entry in concepts:
                rest[key] = value
            else:
                convert = self.convert[entry]
                canonical = (value if type(value) is str else None) if convert is None else convert(value)
                if canonical is None:
                    rest[key] = value
                else:
                    concepts[entry] = canonical
                    sources[entry] = (path + (key,), value)
        return rest


def _writer_of(kind, schema, suffix):
    if kind == "time":
        return TimeWriter(TABLE.settings[("time:format", schema)])
    as_text = suffix == "str"
    if kind in ("severity", "outcome", "direction"):
        as_text = as_text or schema == "csl"  # CSL's LogSeverity, CommunicationDirection are strings
        values = TABLE.values.get((kind, schema), {})
        if kind == "severity" and schema == "ecs":
            return lambda value: value[1] or value[0]  # log.level: the source's own word
        if kind == "severity":
            return lambda value: _number(values.get(value[0]), as_text)
        if suffix == "list":
            return lambda value: [values[value]] if value in values else None
        return lambda value: _number(values.get(value), as_text)
    if kind == "protocol":
        upper = TABLE.settings[("case:protocol", schema)] == "upper"
        return str.upper if upper else str.lower
    if kind == "ip":
        if suffix == "list":
            return lambda value: value if type(value) is list else [value]
        return lambda value: value if type(value) is str else None
    if as_text:
        return str
    if suffix == "list":
        return lambda value: [value]
    return None  # as it is


def _number(text, as_text):
    if text is None or as_text or not text.isdigit():
        return text
    return int(text)


class Writer:
    """Writes concepts in one target schema's names and types."""

    def __init__(self, schema):
        self.plan = {}  # concept -> (path, convert)
        for concept, kind in TABLE.concepts:
            cells = TABLE.cells[schema][concept]
            if cells:
                self.plan[concept] = (cells[0].path, _writer_of(kind, schema, cells[0].suffix))

    def write(self, concepts):
        """(the record, the concepts it could not hold)."""
        out = {}
        unplaced = []
        plan = self.plan
        for concept, canonical in concepts.items():
            step = plan.get(concept)
            if step is None:
                unplaced.append(concept)
                continue
            value = canonical if step[1] is None else step[1](canonical)
            if value is None:
                unplaced.append(concept)
                continue
            path = step[0]
            if len(path) == 1:
                out[path[0]] = value
                continue
            node = out
            for key in path[:-1]:
                node = node.get(key) or node.setdefault(key, {})
            node[path[-1]] = value
        return out, unplaced


def put_back(rest, path, value):
    """A field the target could not hold, into the extras at its source path."""
    node = rest
    for key in path[:-1]:
        child = node.get(key)
        if type(child) is not dict:
            child = node[key] = {} if child is None else {"": child}
        node = child
    node[path[-1]] = value


class Normalizer:
    """field_format NAME: (event time, record) -> the record in that schema, or NotNormalized."""

    def __init__(self, target, compile_shapes=True):
        if target not in FORMATS:
            raise ValueError(f"unknown field_format {target!r}")
        self.target = target
        self.compile_shapes = compile_shapes  # off: every record the general way (the tests' reference)
        self.readers = {}
        self.shapes = {}  # source -> Shapes (not for otel and udm, whose records are rearranged first)
        self.sources = {}  # record keys -> (source schema, its Shapes or None): detect() reads only keys
        self.writer = Writer(target)
        self.time_path, self.write_time = self.writer.plan["time"]
        self.finish = FINISH[target]

    def __call__(self, timestamp, record):
        try:
            return self._normalize(timestamp, record)
        except NotNormalized:
            raise
        except Exception as exc:  # whatever a hostile record finds (RecursionError included)
            raise NotNormalized(f"{exc.__class__.__name__}: {str(exc)[:200]}") from None

    def _reader(self, source):
        reader = self.readers.get(source)
        if reader is None:
            reader = self.readers[source] = Reader(source)
            if source not in ("otel", "udm") and self.compile_shapes:
                self.shapes[source] = Shapes(reader, self.writer)
        return reader

    def _normalize(self, timestamp, record):
        if "resourceLogs" in record:  # an OTLP request may hold several log records
            singles = otel.split_request(record)
            if singles is not None:
                if self.target != "otel" or not singles:
                    raise NotNormalized(f"an OTLP request with {len(singles)} log records: "
                                        f"only field_format otel writes it (one record per request)")
                return otel.join_requests([self._normalize(timestamp, single) for single in singles])
        keys = tuple(record)
        known = self.sources.get(keys)
        if known is None:
            source = detect(record)
            self._reader(source)
            known = (source, self.shapes.get(source))
            if "metadata" not in record and len(self.sources) < 1024:  # UDM's is told by what is inside
                self.sources[keys] = known
        source, shapes = known
        reader = self.readers[source]
        made = shapes(record, keys) if shapes is not None else None
        if made is None:
            view = otel.flatten(record) if source == "otel" else schemas.unwrap(source, record)
            concepts, sources, rest = reader.read(view)
            if source == "otel":
                otel.severity_text(concepts, rest)
        else:
            out, concepts, rest = made
        if "time" not in concepts:
            ns = event_ns(timestamp)
            if ns is None:
                raise NotNormalized(f"event time {timestamp!r} is not a time")
            concepts["time"] = ns
            if made is not None:
                put_back(out, self.time_path, self.write_time(ns))
            else:
                sources["time"] = (("time",), ns)
        if made is None:
            out, unplaced = self.writer.write(concepts)
            for concept in unplaced:
                put_back(rest, *sources[concept])
        if source != "fluentbit":
            rest = schemas.extras_of(source, self.target, rest)
        return self.finish(out, concepts, rest, source == self.target)
