"""field_format's native path (csrc/fastjson_format*.c) runs, per record
shape, a plan made here: the JSON the Python normalizer writes for that
shape, as literal bytes with holes where a value of the record goes (as it
is, as an OTLP AnyValue, inside a JSON string as CSL's AdditionalExtensions
holds it, or the event time in the schema's form).

A shape is what the C code writes as a record's signature: its keys in
order, each value's kind (null, false, true, integer, big or negative
integer, float, "", "-", string, bin, [], array, {}, map), the entries of the
maps a schema reads inside (DESCEND), and the content of the values whose
content decides the output (KEYED: severities, outcomes, directions, ports,
IPs, protocols, HTTP methods and statuses, actions, categories).

A plan is found by normalizing two probe records of the shape: every value
that is not KEYED replaced by a marker of its kind (two different sets), and
the event time by two probe times; where each marker lands in the JSON is a
hole. Both must give the same plan, every marker must be found as a whole
value, and the plan filled with the real record must give the bytes the
Python path gave it; otherwise the shape stays the Python normalizer's
(REFUSE). Shapes that read their time from the record, or whose schema
rearranges the record first (OTel, UDM), are refused too."""
import re
import struct

import orjson

from . import otel
from .schemas import _extension_value
from .normalizer import TABLE, NotNormalized, Normalizer, Reader, detect
from .table import NESTED
from .values import TimeWriter, event_ns

DESCEND, KEYED, IP, PORT = 1, 2, 4, 8
# a canonical IPv4 address (as ipaddress writes it back): under an IP name it is a hole, not
# keyed by its content; fj_format's canonical_ipv4 is the same rule
# a port as its number or as digits int() reads back to the same text: not keyed either (port_text)
PORT_TEXT = re.compile(r"0|[1-9][0-9]{0,4}")
IPV4 = re.compile(r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")
(OP_END, OP_LIT, OP_RAW, OP_RAW_CUT, OP_ANY, OP_TIME, OP_IN_STRING, OP_EXTENSION, OP_DIGITS,
 OP_DIGITS_ANY, OP_REFUSE) = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255
REFUSE = bytes([OP_REFUSE])
TIME_FORMS = {"iso_ms": 1, "iso_us": 2, "epoch_ms": 3, "epoch_ns": 4, "epoch_s": 5, "leef": 6}
# text concepts whose content decides the output (OCSF's class and activity, CEF's and LEEF's header)
DECIDING_TEXT = frozenset({"action", "category"})
JSON = orjson.OPT_NON_STR_KEYS
TEXT = frozenset(concept for concept, kind in TABLE.concepts if kind == "text" and concept not in DECIDING_TEXT)
_INT64_MAX = 2 ** 63 - 1
CUT = 512  # CEF's name: the message's first 512 characters (schemas.cef)
_PROBE_TIMES = ((2_000_000_001, 123_456_789), (2_100_000_002, 987_654_321))
_MARKERS = ("\ue000".encode(), "\ue001".encode(), "\ue002".encode())


class _Refuse(Exception):
    """This shape is the Python normalizer's."""


def special_names():
    """{(parent or "", name): DESCEND | KEYED} over every source schema the plans read."""
    flags = {}

    def mark(parent, name, flag):
        flags[(parent, name)] = flags.get((parent, name), 0) | flag

    for schema in TABLE.schemas:
        if schema == "otel":  # its cells name attributes, not keys
            continue
        for key, entry in Reader(schema).trie.items():
            if type(entry) is dict:
                mark("", key, DESCEND)
        for concept, kind in TABLE.concepts:
            if concept == "time" or (kind == "text" and concept not in DECIDING_TEXT):
                continue
            for cell in TABLE.cells[schema][concept]:
                path = cell.path
                if len(path) <= 2:
                    mark(path[0] if len(path) == 2 else "", path[-1],
                         KEYED | (IP if kind == "ip" else PORT if kind == "port" else 0))
                if len(path) > 1 and schema in NESTED:  # ECS as ecs-logging writes it
                    mark("", ".".join(path), KEYED | (IP if kind == "ip" else PORT if kind == "port" else 0))
    return flags


def names_blob(flags):
    """The names table as fj_format reads it (names over 255 bytes cannot be keys it treats apart)."""
    out = bytearray()
    for (parent, name), flag in sorted(flags.items()):
        parent_bytes, name_bytes = parent.encode(), name.encode()
        if len(parent_bytes) < 256 and len(name_bytes) < 256:
            out += bytes([flag, len(parent_bytes), len(name_bytes)]) + parent_bytes + name_bytes
    return bytes(out)


def slots_of(record, descend):
    """[(path, value)] in the order fj_format numbers its slots."""
    slots = []
    for key, value in record.items():
        slots.append(((key,), value))
        if type(value) is dict and value and key in descend:
            slots.extend(((key, inner), item) for inner, item in value.items())
    return slots


def _probe_value(value, variant, slot, pad=""):
    """A marker of the value's kind, or the value itself when it is a constant of the shape
    (pad: CEF's name cuts the message, so its markers are longer than the cut)."""
    kind = type(value)
    marker = f"\ue000{variant}.{slot}\ue001{pad}"
    if value is None or kind is bool or (kind is str and value in ("", "-")):
        return value, False
    if kind is str:
        return marker, True
    if kind is int:
        number = 7_000_000_000_000 + 1000 * variant + slot
        return (2 ** 63 + number if value > _INT64_MAX else -number if value < 0 else number), True
    if kind is float:
        return 7_000_000_000_000 + 1000 * variant + slot + 0.5, True
    if kind is list:
        return ([marker], True) if value else ([], False)
    if kind is dict:
        return ({f"\ue002{variant}.{slot}": marker}, True) if value else ({}, False)
    raise _Refuse()  # bin, ext: the Python normalizer's


def _number(value):
    return type(value) in (int, float)


def encode(ops):
    """A plan's ops as fj_format's program."""
    out = bytearray()
    for op, arg in ops:
        if op == OP_LIT:
            out += bytes([OP_LIT]) + struct.pack("=I", len(arg)) + arg
        elif op == OP_TIME:
            out += bytes([OP_TIME, arg])
        else:
            out += bytes([op]) + struct.pack("=H", arg)
    out.append(OP_END)
    return bytes(out)


class Plans:
    """Plans for one target schema."""

    def __init__(self, target):
        self.target = target
        self.normalizer = Normalizer(target)  # the probes' own: they never touch the Shaper's caches
        self.form = TABLE.settings[("time:format", target)]
        self.write_time = TimeWriter(self.form)
        self.flags = special_names()
        self.names = names_blob(self.flags)
        self.descend = frozenset(name for (parent, name), f in self.flags.items() if not parent and f & DESCEND)
        self.keyed = frozenset(key for key, f in self.flags.items() if f & KEYED)
        self.ips = frozenset(key for key, f in self.flags.items() if f & IP)
        self.ports = frozenset(key for key, f in self.flags.items() if f & PORT)
        self.tries = {}
        self.pad = "x" * CUT if target == "cef" else ""

    def plan(self, timestamp, record, expected):
        """The program for the record's shape (REFUSE when the Python
        normalizer keeps it); expected: the bytes the Python path gave it."""
        try:
            slots = slots_of(record, self.descend)
            self._check(record, slots)
            ops = self._ops(record, slots, 0)
            if ops != self._ops(record, slots, 1):
                return REFUSE
            return encode(ops) if self.render(ops, slots, timestamp) == expected else REFUSE
        except (_Refuse, NotNormalized, TypeError, ValueError, orjson.JSONEncodeError, RecursionError):
            return REFUSE

    def _check(self, record, slots):
        source = detect(record)
        if source in ("otel", "udm"):
            raise _Refuse()
        trie = self.tries.get(source)
        if trie is None:
            trie = self.tries[source] = Reader(source).trie
        for path, value in slots:
            entry = trie.get(path[0])
            if len(path) == 2:
                entry = entry.get(path[1]) if type(entry) is dict else None
            if entry == "time":  # read from the record: every value its own
                raise _Refuse()
            if type(entry) is dict and type(value) is dict and value and len(path) == 2:
                raise _Refuse()  # the schema reads deeper than one map
            if type(entry) is str and not self._keyed(path) and entry not in TEXT:  # (IP names are keyed too)
                raise _Refuse()  # a value that decides the output, not in the signature

    def _keyed(self, path):
        return (path[0] if len(path) == 2 else "", path[-1]) in self.keyed

    def _ops(self, record, slots, variant):
        """The plan found by the probe record of this variant: [(op, argument)]."""
        probe, holes, at = {}, [], 0
        for path, value in slots:
            if len(path) == 2:
                continue
            if type(value) is dict and value and path[0] in self.descend:
                inner = probe[path[0]] = {}
                for index, (key, item) in enumerate(value.items(), at + 1):
                    inner[key] = self._probe(item, variant, index, path + (key,), holes)
                probe_at = len(value)
            else:
                probe[path[0]] = self._probe(value, variant, at, path, holes)
                probe_at = 0
            at += 1 + probe_at
        seconds, nanos = _PROBE_TIMES[variant]
        data = orjson.dumps(self.normalizer(struct.pack(">II", seconds, nanos), probe), option=JSON)
        return self._cut(data, holes, self.write_time(seconds * 1_000_000_000 + nanos))

    def _probe(self, value, variant, slot, path, holes):
        name = (path[0] if len(path) == 2 else "", path[-1])
        probe = None
        if name in self.ips and type(value) is str and IPV4.fullmatch(value):
            probe = f"{10 + variant}.{slot // 256}.{slot % 256}.77"
        elif name in self.ports and type(value) is int and 0 <= value <= 65535:
            probe = 30000 + 1024 * variant + slot
        elif name in self.ports and type(value) is str and PORT_TEXT.fullmatch(value) and int(value) <= 65535:
            probe = str(30000 + 1024 * variant + slot)
        if probe is not None:
            holes.append((slot, probe))
            return probe
        if self._keyed(path):
            return value
        probe, hole = _probe_value(value, variant, slot, self.pad)
        if hole:
            holes.append((slot, probe))
        return probe

    def _cut(self, data, holes, time_value):
        """The JSON cut into literals and holes."""
        patterns = []  # (regex, op, argument)
        for slot, probe in holes:
            raw, any_value = orjson.dumps(probe, option=JSON), orjson.dumps(otel.any_value(probe), option=JSON)
            raw_regex = rb"(?<![0-9.\-])" + re.escape(raw) + rb"(?![0-9.eE])" if _number(probe) else re.escape(raw)
            patterns.append((re.escape(any_value), OP_ANY, slot))
            if self.target == "csl" and not _number(probe):  # AdditionalExtensions: values inside a string
                patterns.append((re.escape(orjson.dumps(raw.decode())[1:-1]), OP_IN_STRING, slot))
            patterns.append((raw_regex, OP_RAW, slot))
            if type(probe) is str and len(probe) > CUT:  # CEF's name: the message's first 512 characters
                patterns.append((re.escape(orjson.dumps(probe[:CUT])), OP_RAW_CUT, slot))
            if self.target == "csl" and type(probe) is str:
                patterns.append((re.escape(orjson.dumps(probe)[1:-1]), OP_EXTENSION, slot))
            if type(probe) is str and probe.isdigit():  # a port's digits, read as a number
                patterns += [(re.escape(b'{"intValue":"%s"}' % probe.encode()), OP_DIGITS_ANY, slot),
                             (rb"(?<![0-9.\-])" + probe.encode() + rb"(?![0-9.eE])", OP_DIGITS, slot)]
        time_raw = orjson.dumps(time_value)
        patterns.append((rb"(?<![0-9.\-])" + re.escape(time_raw) + rb"(?![0-9.eE])" if _number(time_value)
                         else re.escape(time_raw), OP_TIME, TIME_FORMS[self.form]))
        regex = re.compile(b"|".join(b"(%s)" % pattern for pattern, _, _ in patterns))
        ops, at = [], 0
        for match in regex.finditer(data):
            if match.start() > at:
                ops.append((OP_LIT, data[at:match.start()]))
            _, op, argument = patterns[match.lastindex - 1]
            ops.append((op, argument))
            at = match.end()
        if at < len(data):
            ops.append((OP_LIT, data[at:]))
        if any(marker in arg for op, arg in ops if op == OP_LIT for marker in _MARKERS):
            raise _Refuse()  # a marker inside something else (a key, a text): not a whole value
        if not any(op == OP_TIME for op, _ in ops):
            raise _Refuse()
        return ops

    def render(self, ops, slots, timestamp):
        """The plan filled with a record, as the C code fills it (for the check against Python's bytes)."""
        out = []
        for op, arg in ops:
            if op == OP_LIT:
                out.append(arg)
            elif op == OP_TIME:
                out.append(orjson.dumps(self.write_time(event_ns(timestamp))))
            elif op == OP_ANY:
                out.append(orjson.dumps(otel.any_value(slots[arg][1]), option=JSON))
            elif op == OP_IN_STRING:
                out.append(orjson.dumps(orjson.dumps(slots[arg][1], option=JSON).decode())[1:-1])
            elif op == OP_EXTENSION:
                out.append(orjson.dumps(_extension_value(slots[arg][1]))[1:-1])
            elif op == OP_DIGITS:
                out.append(slots[arg][1].encode())
            elif op == OP_DIGITS_ANY:
                out.append(b'{"intValue":"%s"}' % slots[arg][1].encode())
            elif op == OP_RAW_CUT:
                out.append(orjson.dumps(slots[arg][1][:CUT]))
            else:
                out.append(orjson.dumps(slots[arg][1], option=JSON))
        return b"".join(out)
