"""A value into a concept's canonical form (read) and out of it into a
schema's type (write). Canonical forms: time as integer nanoseconds since the
epoch (UTC); severity as (level or None, the source's own text or None);
outcome and direction as their row names (success, inbound, ...); protocols
lower case; IPs as text; ports and numbers as int. A read that cannot
convert returns None: the field then stays where it was, as an extra."""
import datetime
import ipaddress
import math
import struct
import time

NS = 1_000_000_000
UNIT_NS = {"epoch_s": NS, "epoch_ms": 1_000_000, "epoch_ns": 1}
LEVELS = ("trace", "debug", "info", "low", "warn", "error", "fatal")
# the source's own words for a level, whatever its schema (lower case)
LEVEL_WORDS = {
    "trace": "trace", "finest": "trace", "debug": "debug", "dbg": "debug", "fine": "debug",
    "info": "info", "information": "info", "informational": "info", "notice": "info", "i": "info",
    "warn": "warn", "warning": "warn", "w": "warn", "low": "low", "medium": "warn",
    "error": "error", "err": "error", "e": "error", "high": "error", "severe": "error",
    "fatal": "fatal", "critical": "fatal", "crit": "fatal", "alert": "fatal", "emerg": "fatal",
    "emergency": "fatal", "panic": "fatal", "very-high": "fatal",
}
OUTCOME_WORDS = {"success": "success", "succeeded": "success", "successful": "success", "ok": "success",
                 "allow": "success", "allowed": "success", "accept": "success", "accepted": "success",
                 "pass": "success", "failure": "failure", "failed": "failure", "fail": "failure",
                 "deny": "failure", "denied": "failure", "block": "failure", "blocked": "failure",
                 "drop": "failure", "dropped": "failure", "reject": "failure", "rejected": "failure",
                 "unknown": "unknown"}
DIRECTION_WORDS = {"inbound": "inbound", "ingress": "inbound", "outbound": "outbound", "egress": "outbound",
                   "internal": "internal", "lateral": "internal", "local": "internal",
                   "external": "external", "unknown": "unknown"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {m.lower(): i for i, m in enumerate(_MONTHS, 1)}
_UTC = datetime.timezone.utc
_EVENT_TIME = struct.Struct(">II")
_MIN_NS, _MAX_NS = -62135596800 * NS, 253402300799 * NS  # years 1 to 9999


def _ns_in_range(ns):
    return ns if _MIN_NS <= ns <= _MAX_NS else None


def number_ns(value, unit):
    """An epoch number (int, float or their text) in `unit` -> ns, or None."""
    if type(value) is str:
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if type(value) is int:
        return _ns_in_range(value * UNIT_NS[unit])
    if type(value) is float and math.isfinite(value):  # to the microsecond: a double holds no more
        return _ns_in_range(int(round(value * UNIT_NS[unit] / 1000)) * 1000)
    return None


def text_ns(text):
    """ISO 8601 / RFC 3339, or "MMM dd yyyy HH:mm:ss[.SSS][ UTC]" (CEF, LEEF) -> ns, or None."""
    text = text.strip()
    try:
        moment = datetime.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        moment = _month_first(text)
        if moment is None:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=_UTC)
    return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000


def _month_first(text):
    parts = text.split()
    if len(parts) not in (4, 5) or parts[0].lower() not in _MONTH_NUMBERS:
        return None
    if len(parts) == 5 and parts[4].upper() not in ("UTC", "GMT", "Z", "+0000"):
        return None  # another zone: not guessed
    clock, _, fraction = parts[3].partition(".")
    try:
        hours, minutes, seconds = (int(x) for x in clock.split(":"))
        micros = int((fraction + "000000")[:6]) if fraction else 0
        return datetime.datetime(int(parts[2]), _MONTH_NUMBERS[parts[0].lower()], int(parts[1]),
                                 hours, minutes, seconds, micros)
    except ValueError:
        return None


def read_time(value, unit):
    """A schema's time field -> ns, or None."""
    if type(value) is str and unit not in UNIT_NS:
        return text_ns(value)
    if type(value) is str and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return text_ns(value)
    return number_ns(value, unit if unit in UNIT_NS else "epoch_s")


def event_ns(timestamp):
    """Fluent Bit's event time (EventTime bytes, int or float seconds) -> ns, or None (NaN, inf)."""
    if type(timestamp) is bytes:
        seconds, nanos = _EVENT_TIME.unpack(timestamp)
        return seconds * NS + nanos
    return number_ns(timestamp, "epoch_s")


class TimeWriter:
    """ns -> a schema's time type; the date part is cached per second."""

    def __init__(self, form):
        self.form = form
        self._second, self._text = None, ""

    def __call__(self, ns):
        form = self.form
        if form in UNIT_NS:
            if form == "epoch_s":  # to the microsecond, as a double holds it
                return round(ns / NS, 6)
            if form == "epoch_ns":
                return str(ns)
            return ns // UNIT_NS[form]
        second, fraction = divmod(ns, NS)
        if second != self._second:
            parts = time.gmtime(second)
            self._text = (f"{_MONTHS[parts.tm_mon - 1]} {parts.tm_mday:02d} {parts.tm_year:04d} "
                          f"{parts.tm_hour:02d}:{parts.tm_min:02d}:{parts.tm_sec:02d}" if form == "leef"
                          else time.strftime("%Y-%m-%dT%H:%M:%S", parts))
            self._second = second
        if form == "iso_ms":
            return "%s.%03dZ" % (self._text, fraction // 1_000_000)
        if form == "leef":
            return "%s.%03d UTC" % (self._text, fraction // 1_000_000)
        return "%s.%06dZ" % (self._text, fraction // 1000)


def read_severity(value, reverse):
    """(level or None, the source's text or None); None when not a severity at all."""
    if type(value) is str:
        word = value.strip().lower()
        level = reverse.get(word) or LEVEL_WORDS.get(word)
        if level is None and word.isdigit():
            level = reverse.get(str(int(word)))
        return (level, value) if value.strip() else None
    if type(value) is int and str(value) in reverse:
        return reverse[str(value)], None
    return None


def read_word(value, reverse, words):
    """outcome, direction: the schema's own value first (0 means one thing to OCSF, another to CEF)."""
    if type(value) is list and len(value) == 1:
        value = value[0]
    if type(value) is int:
        value = str(value)
    if type(value) is not str:
        return None
    word = value.strip().lower()
    return reverse.get(word) or words.get(word)


def read_ip(value):
    if type(value) is list:
        ips = [read_ip(v) for v in value]
        return (ips[0] if len(ips) == 1 else ips) if ips and None not in ips else None
    if type(value) is not str:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def read_int(value, high=None):
    if type(value) is str and value.strip().isdigit() and value.isascii():
        value = int(value)
    if type(value) is not int or value < 0 or (high is not None and value > high):
        return None
    return value


def read_text(value):
    return value if type(value) is str and value else None


READERS = {
    "ip": read_ip,
    "port": lambda v: read_int(v, 65535),
    "int": read_int,
    "text": read_text,
    "upper": lambda v: v.upper() if type(v) is str and v else None,
    "lower": lambda v: v.lower() if type(v) is str and v else None,
    "protocol": lambda v: v.lower() if type(v) is str and v else None,
}
