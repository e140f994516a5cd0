"""Plugin properties -> validated, typed settings.

Every option is declared once in OPTIONS with its parser and default; a bad
value raises ConfigError naming the option and what is allowed, which Init
turns into one log line.
"""
import os
import re
from dataclasses import dataclass, field, make_dataclass
from typing import Callable, Optional
from urllib.parse import unquote

from .telemetry.redact import MASK, redact, remember_secret, url_password

MIB = 1024 * 1024
SERVICE_MAX_RECORD_BYTES = 10 * MIB
SERVICE_MAX_REQUEST_BYTES = 10 * MIB
MAX_PARTITION_KEY_CHARS = 256
COMPRESSIONS = ("none", "zlib", "gzip", "zstd")
INVALID_UTF8 = ("replace", "base64", "dead_letter")  # the first is the default
# none, then pipeline.formats.FORMATS (config may not import pipeline; a test holds them equal)
FIELD_FORMATS = ("none", "ecs", "cim", "asim", "udm", "ocsf", "cef", "leef", "csl", "otel")


class ConfigError(ValueError):
    pass


def parse_bool(option, text):
    value = text.strip().lower()
    if value in ("true", "on", "yes", "1"):
        return True
    if value in ("false", "off", "no", "0"):
        return False
    raise ConfigError(f"option '{option}': '{text}' is not a boolean; allowed: true, false")


def int_in(low, high=None):
    def parse(option, text):
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            allowed = f"{low} to {high}" if high is not None else f"{low} or more"
            raise ConfigError(f"option '{option}': '{text}' is not valid; allowed: a whole number from {allowed}")
        return value
    return parse


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(option, text):
    """Go-style durations ("1m30s", "250ms"); a bare number means seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION_PART.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ConfigError(f"option '{option}': '{text}' is not a duration; "
                              "allowed: a number of seconds or Go style such as 250ms, 30s, 5m30s") from None
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds < 0:
        raise ConfigError(f"option '{option}': '{text}' is negative; allowed: 0 or more")
    return seconds


def one_of(*choices):
    def parse(option, text):
        value = text.strip().lower()
        if value == "":
            value = choices[0]
        if value not in choices:
            raise ConfigError(f"option '{option}': '{text}' is not valid; allowed: {', '.join(choices)}")
        return value
    return parse


def text(option, value):
    return value


def directory(option, value):
    if value.strip().lower() in ("off", "false", "none"):
        return "off"
    if not value.strip():
        raise ConfigError(f"option '{option}': empty; allowed: a directory path (created if missing) or off")
    if os.path.exists(value) and not os.path.isdir(value):
        raise ConfigError(f"option '{option}': '{value}' is not a directory; "
                          "allowed: a directory path (created if missing) or off")
    return value


def key_list(option, value):
    return [k.strip() for k in value.split(",") if k.strip()]


def key_path(option, value):
    path = [k for k in value.split("->")]
    if not all(path):
        raise ConfigError(f"option '{option}': '{value}' has an empty key; allowed: key or key->nested->key")
    return path


def partition_key_text(option, value):
    if not 1 <= len(value) <= MAX_PARTITION_KEY_CHARS:
        raise ConfigError(f"option '{option}': allowed: 1 to {MAX_PARTITION_KEY_CHARS} characters")
    return value


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable
    default: object = None
    secret: bool = False
    doc: str = ""


OPTIONS = [
    Option("region", text, None, doc="AWS region of the stream (required unless stream_arn names it)"),
    Option("stream", text, None, doc="stream name (this or stream_arn is required)"),
    Option("stream_arn", text, None, doc="stream ARN, instead of stream"),
    Option("partition_key", key_path, None, doc="record key whose value is the partition key; nested: a->b"),
    Option("fixed_partition_key", partition_key_text, None, doc="one partition key for every record"),
    Option("data_keys", key_list, None, doc="comma separated keys to keep; others are dropped"),
    Option("log_key", text, None, doc="send only this key's value (strings raw, others as JSON)"),
    Option("append_newline", parse_bool, False, doc="add \\n after each record"),
    Option("invalid_utf8", one_of(*INVALID_UTF8), "replace",
           doc="invalid UTF-8 and bin values: replace (U+FFFD), base64 (as base64 text) or dead_letter"),
    Option("time_key", text, None, doc="add the event time under this key"),
    Option("time_key_format", text, "%Y-%m-%dT%H:%M:%S", doc="strftime format, plus %L (ms) and %f (µs)"),
    Option("replace_dots", text, None, doc="replace dots in keys (recursively) with this string"),
    Option("field_format", one_of(*FIELD_FORMATS), "none",
           doc="normalize records to a schema: none, ecs, cim, asim, udm, ocsf, cef, leef, csl, otel"),
    Option("aggregation", parse_bool, False, doc="KPL aggregation, shard aware"),
    Option("aggregation_maximum_record_size", int_in(1024, SERVICE_MAX_RECORD_BYTES), MIB,
           doc="bytes per aggregate (simple_aggregation too), capped by max_record_bytes"),
    Option("skip_aggregation_record_size", int_in(1, SERVICE_MAX_RECORD_BYTES), 20 * 1024,
           doc="records larger than this are sent on their own, not aggregated"),
    Option("simple_aggregation", parse_bool, False,
           doc="pack records as newline delimited text into one Kinesis record; keys not preserved"),
    Option("compression", one_of(*COMPRESSIONS), "none", doc="compress each record: none, zlib, gzip, zstd"),
    Option("endpoint", text, None, doc="Kinesis endpoint URL"),
    Option("sts_endpoint", text, None, doc="STS endpoint URL for role_arn"),
    Option("role_arn", text, None, doc="IAM role to assume"),
    Option("external_id", text, None, secret=True, doc="external ID for role_arn"),
    Option("profile", text, None, doc="shared credentials/config profile"),
    Option("access_key_id", text, None, secret=True, doc="static credentials (prefer the default chain)"),
    Option("secret_access_key", text, None, secret=True, doc="static credentials"),
    Option("session_token", text, None, secret=True, doc="static credentials"),
    Option("http_proxy", text, None, doc="HTTP proxy URL for AWS calls"),
    Option("http_request_timeout", int_in(0), 0, doc="seconds per HTTP request; 0: 60 s"),
    Option("max_records_per_request", int_in(1, 500), 500, doc="entries per PutRecords (1-500)"),
    # 1 MiB by default: 500 typical log records are ~200 KB, and larger bodies
    # (aggregates) only cost memory; the service allows up to 10 MiB
    Option("max_request_bytes", int_in(1024, SERVICE_MAX_REQUEST_BYTES), MIB,
           doc="bytes per PutRecords, up to 10 MiB"),
    Option("max_record_bytes", int_in(1024, SERVICE_MAX_RECORD_BYTES), MIB,
           doc="bytes per record incl. partition key; raise for streams allowing 10 MiB"),
    Option("max_retries", int_in(-1), 8,
           doc="failed tries per record within one flush before FLB_RETRY; -1: until delivered or shutdown"),
    Option("backoff_increment", parse_duration, 0.1,
           doc="first retry delay (Go duration); doubles per try up to 10 s, with 50-100% jitter"),
    Option("dead_letter_file", text, None, doc="JSON lines file for records that cannot be sent"),
    Option("dead_letter_max_bytes", int_in(4096), 100 * MIB, doc="dead_letter_file size before it rotates to .1"),
    Option("ledger_path", directory, None,
           doc="directory of the durable state (ledger and hand-off spool); default: STATE_DIRECTORY, "
               "/var/lib/fluentbit-kinesis (root) or ~/.local/state/fluentbit-kinesis; off: none"),
    Option("handoff_max_bytes", int_in(MIB), 64 * MIB,
           doc="with workers 0: bytes of chunks queued for delivery off the engine thread"),
    Option("experimental_concurrency", int_in(0, 10), 0, doc="accepted for compatibility; use workers"),
    Option("experimental_concurrency_retries", int_in(0), None, doc="accepted; sets max_retries if unset"),
    # operations: trying a pipeline without AWS, and watching one that runs
    Option("dry_run", parse_bool, False, doc="do everything but PutRecords; log what would be sent; no AWS calls"),
    Option("metrics_port", int_in(0, 65535), 0, doc="Prometheus metrics on this TCP port; 0: off"),
    Option("metrics_listen", text, "127.0.0.1", doc="address the metrics listener binds to"),
    Option("metrics_log_interval", parse_duration, 0.0, doc="seconds between metrics summary lines at info; 0: off"),
]
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}
SECRET_OPTIONS = frozenset(o.name for o in OPTIONS if o.secret)


def _masked(self):
    """Settings as a dict for display, secrets replaced."""
    shown = {}
    for option in OPTIONS:
        value = getattr(self, option.name)
        if option.secret and value:
            value = MASK
        elif isinstance(value, str):
            value = redact(value, limit=None)
        shown[option.name] = value
    return shown


# every option with its default, then what comes from the environment
Settings = make_dataclass("Settings", [(o.name, object, field(default=o.default)) for o in OPTIONS] + [
    ("log_level", Optional[int], None),  # FLB_LOG_LEVEL
    ("send_failure_timeout", Optional[float], None),  # SEND_FAILURE_TIMEOUT
    ("explicitly_set", frozenset, field(default_factory=frozenset)),
], namespace={"masked": _masked, "__module__": __name__})


LOG_LEVELS = {"error": 1, "warn": 2, "warning": 2, "info": 3, "debug": 4, "trace": 5}


def parse_environment(environ, settings):
    level = environ.get("FLB_LOG_LEVEL")
    if level:
        if level.strip().lower() not in LOG_LEVELS:
            raise ConfigError(f"environment FLB_LOG_LEVEL: '{level}' is not valid; "
                              "allowed: error, warn, info, debug, trace")
        settings.log_level = LOG_LEVELS[level.strip().lower()]
    timeout = environ.get("SEND_FAILURE_TIMEOUT")
    if timeout:
        seconds = parse_duration("SEND_FAILURE_TIMEOUT", timeout)
        settings.send_failure_timeout = seconds or None


def _remember_secrets(option, raw):
    """Secret values are masked in every message from now on, even one quoting them."""
    if option.secret:
        remember_secret(raw)
    elif option.name == "http_proxy" and url_password(raw):
        remember_secret(url_password(raw))
        remember_secret(unquote(url_password(raw)))  # as an HTTP client decodes it


def load(get_property, environ=os.environ):
    """Builds Settings from a property getter (name -> str or None)."""
    settings = Settings()
    explicit = set()
    for option in OPTIONS:
        raw = get_property(option.name)
        if raw is None:
            continue
        raw = raw.strip()
        if raw == "" and option.parse is not text:
            continue
        _remember_secrets(option, raw)
        setattr(settings, option.name, option.parse(option.name, raw))
        explicit.add(option.name)
    settings.explicitly_set = frozenset(explicit)
    parse_environment(environ, settings)
    _check_combinations(settings)
    return settings


_STREAM_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):\d{12}:stream/[A-Za-z0-9_.-]{1,128}$")


def _check_combinations(s):
    if s.stream and s.stream_arn:
        raise ConfigError("options 'stream' and 'stream_arn': set one of them, not both")
    if not s.stream and not s.stream_arn:
        raise ConfigError("option 'stream' is required (or 'stream_arn')")
    if s.stream_arn:
        match = _STREAM_ARN.match(s.stream_arn)
        if not match:
            raise ConfigError(f"option 'stream_arn': '{s.stream_arn}' is not valid; "
                              "allowed: arn:aws:kinesis:REGION:ACCOUNT:stream/NAME")
        s.region = s.region or match.group(1)
    if not s.region:
        raise ConfigError("option 'region' is required")
    if s.partition_key and s.fixed_partition_key:
        raise ConfigError("options 'partition_key' and 'fixed_partition_key': set one of them, not both")
    if s.aggregation and s.simple_aggregation:
        raise ConfigError("options 'aggregation' and 'simple_aggregation': set one of them, not both")
    if bool(s.access_key_id) != bool(s.secret_access_key):
        raise ConfigError("options 'access_key_id' and 'secret_access_key': set both or neither")
    if s.replace_dots is not None and "." in s.replace_dots:
        raise ConfigError("option 'replace_dots': the replacement must not contain a dot")
    if "max_retries" not in s.explicitly_set and s.experimental_concurrency_retries is not None:
        s.max_retries = s.experimental_concurrency_retries
    for name in ("endpoint", "sts_endpoint", "http_proxy"):
        url = getattr(s, name)
        if url and not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"option '{name}': '{redact(url)}' is not valid; allowed: an http:// or https:// URL")
    password = url_password(s.http_proxy)
    if password and ("@" in password or "/" in password):
        # unencoded, they move the host into the password: the proxy would be another host
        raise ConfigError(f"option 'http_proxy': '{redact(s.http_proxy)}' is not valid; allowed: "
                          "an http:// or https:// URL with any @ or / in the user name or password written as %40 or %2F")
