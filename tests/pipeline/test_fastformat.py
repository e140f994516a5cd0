"""field_format natively (pipeline/fastformat.py, csrc/fastjson_format*.c)
against the Python path, the reference: byte for byte the same payloads,
the same rejects and counts, for all nine formats, on the fixtures and on
seeded random records of repeating shapes whose values vary and go odd
(wrong types, missing-value marks, invalid UTF-8, bin, nested maps, huge
integers, floats, non-finite floats, float and integer event times), and
IPv4 addresses and ports, which are holes of a plan rather than its shape."""
import random
import struct
from types import SimpleNamespace

import msgpack
import pytest

from fluentbit_kinesis.pipeline import fastpath
from fluentbit_kinesis.pipeline.formats import FORMATS
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.pipeline.field_format.fixtures import EVENT_TIME, FIXTURES, SOURCES
from tests.pipeline.test_fastpath import random_bytes, random_float, random_text
from tests.support.harness import make_chunk

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE, reason="the native fast path is not built")
RECORDS = list(FIXTURES.values()) + list(SOURCES.values())


def settings(field_format, **extra):
    values = dict(partition_key=None, fixed_partition_key=None, data_keys=None, time_key=None,
                  time_key_format="%Y-%m-%dT%H:%M:%S", replace_dots=None, log_key=None, append_newline=False,
                  compression="none", max_record_bytes=1024 * 1024, invalid_utf8="replace",
                  field_format=field_format)
    values.update(extra)
    return SimpleNamespace(**values)


def outcome(shaped):
    """What a ShapedChunk sends and keeps, without the random fallback keys."""
    keys = [key for _, key, _ in shaped.entries] if shaped.entries and shaped.entries[0][1] else None
    return ([(data, index) for data, _, index in shaped.entries], shaped.rejected_indices(), keys,
            shaped.not_normalized, shaped.invalid_utf8, sorted(shaped.originals))


def compare(field_format, chunks, rounds=2, **extra):
    """Every chunk through a native Shaper (rounds times: learning, then by
    plans) and the Python path; returns the native Shaper."""
    native = Shaper(settings(field_format, **extra))
    python = Shaper(settings(field_format, **extra))
    python.fast = None
    assert native.fast is not None
    for chunk in chunks:
        want = outcome(python.shape_chunk(chunk))
        if want[2] is not None:  # partition keys from the record: the same, except random fallbacks
            want = want[:2] + (None,) + want[3:]
        for _ in range(rounds):
            got = native.shape_chunk(chunk)
            got_outcome = outcome(got)
            if got_outcome[2] is not None:
                got_outcome = got_outcome[:2] + (None,) + got_outcome[3:]
            assert got_outcome == want, field_format
    return native


@pytest.mark.parametrize("field_format", FORMATS)
def test_fixtures_same_as_python(field_format):
    chunk = make_chunk(RECORDS, start=EVENT_TIME, step=0.001)
    native = compare(field_format, [chunk])
    assert native.shape_chunk(chunk).path in ("fast", "mixed")


@pytest.mark.parametrize("field_format", FORMATS)
def test_plain_fluent_bit_records_go_natively(field_format):
    """Kubernetes container logs: after the first chunk, every record by its shape's plan."""
    records = [{"log": f"line {i}", "stream": "stdout", "time": "2026-11-22T10:00:00Z",
                "kubernetes": {"pod_name": f"p-{i % 3}", "namespace_name": "ns", "labels": {"app": "a"},
                               "container_name": "c"}} for i in range(30)]
    chunk = make_chunk(records)
    native = compare(field_format, [chunk])
    assert native.shape_chunk(chunk).path == "fast"


def test_long_messages_cut_as_cef_cuts_its_name():
    """CEF's name is the message's first 512 characters: natively too, multi-byte ones included."""
    messages = ["x" * 511 + "€" * 3, "é" * 600, "a" * 512, "b" * 513, "😀" * 700, "short", "\n" * 520 + "q"]
    records = [{"log": message, "stream": "stdout"} for message in messages * 3]
    chunk = make_chunk(records)
    for field_format in FORMATS:
        native = compare(field_format, [chunk])
        assert native.shape_chunk(chunk).path == "fast"


def test_partition_key_newline_and_compression_as_python():
    records = [dict(FIXTURES["kubernetes"], log=f"line {i}") for i in range(20)] + [{"log": "no kubernetes"}]
    chunk = make_chunk(records)
    for field_format in ("ecs", "otel", "cef"):
        compare(field_format, [chunk], partition_key=["kubernetes", "pod_name"], append_newline=True,
                compression="zlib")


def test_canonical_ipv4_addresses_are_holes_others_are_the_shape():
    """Any canonical dotted quad under an IP name takes the same plan (nginx's
    remote, a firewall's src_ip); anything else is keyed by its content."""
    rng = random.Random(4)
    addresses = [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(300)]
    odd = ["010.0.0.1", "1.2.3", "256.0.0.1", " 1.2.3.4", "1.2.3.4\n", "::1", "1.2.3.4.5", "0.0.0.0", "١.2.3.4"]
    records = [{"remote": address, "src_ip": rng.choice(addresses + odd), "method": "GET", "code": "200",
                "path": f"/{i}"} for i, address in enumerate(addresses + odd)]
    chunk = make_chunk(records)
    for field_format in FORMATS:
        native = compare(field_format, [chunk])
        assert len(native.fast.table.known) < 40  # not one shape per address


def test_ports_as_numbers_or_digits_are_holes_others_are_the_shape():
    rng = random.Random(5)
    odd = ["007", "65536", " 80", "80 ", "-1", "", "8O", "٨٠", 70000, -5, 2 ** 64 - 1, 1.5, None, True]
    records = [{"hostname": "fw", "src_ip": "192.0.2.1", "src_port": rng.choice([rng.randrange(65536),
                str(rng.randrange(65536)), "0", 0, 65535, "65535"] + odd), "dst_port": rng.randrange(65536),
                "protocol": "TCP", "action": "deny", "message": f"m {i}"} for i in range(400)]
    chunk = make_chunk(records)
    for field_format in FORMATS:
        native = compare(field_format, [chunk])
        assert len(native.fast.table.known) < 40  # not one shape per port


# ---- random records ---------------------------------------------------------------

# keys the schemas read (and some they do not), each with the kinds of values it gets
SHAPES = [
    ("log", "stream", "time", "kubernetes"),
    ("log", "level", "stream", "kubernetes"),
    ("message", "severity", "hostname", "pid", "ident"),
    ("remote", "host", "user", "method", "path", "code", "size", "agent"),
    ("hostname", "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "direction", "action", "outcome",
     "level", "message"),
    ("log", "user", "action", "category", "outcome", "region", "account_id", "cloud_provider", "az"),
    ("msg", "log_level", "host_ip", "client_ip", "status", "url", "host"),
    ("class_uid", "message", "severity_id", "unmapped"),
    ("@timestamp", "message", "log.level", "host"),
    ("message", "ecs", "orchestrator", "container", "log"),
]
WORDS = ["info", "INFO", "warn", "error", "debug", "fatal", "notice", "7", "3", "GET", "post", "tcp", "UDP",
         "inbound", "egress", "success", "deny", "login", "logout", "authentication", "aws", "us-east-1",
         "10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "010.0.0.1", "80", "65536", "007", " 42", "-", "",
         "255.255.255.255", "0.0.0.0", "256.1.1.1", "1.2.3", "1.2.3.4.", "1.2.3.4 ", "1.02.3.4", "1..3.4", "1234.1.1.1"]


def odd_value(rng, depth=0):
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(WORDS)
    if roll < 0.45:
        return random_text(rng)
    if roll < 0.55:
        return random_bytes(rng)  # bin, or invalid UTF-8 in a str when packed without bin types
    if roll < 0.7:
        return rng.choice([0, 1, -5, 443, 70000, 2 ** 63 - 1, 2 ** 63 + 5, 2 ** 64 - 1, -2 ** 63, 10 ** 15])
    if roll < 0.78:
        return random_float(rng, False)
    if roll < 0.85 and depth < 3:
        return {rng.choice(["app", "name", "pod_name", "level", random_text(rng)]): odd_value(rng, depth + 1)
                for _ in range(rng.randrange(4))}
    if roll < 0.9 and depth < 3:
        return [odd_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return rng.choice([None, True, False, "-", ""])


def kubernetes(rng):
    keys = ["pod_name", "namespace_name", "container_name", "container_image", "docker_id", "host", "labels"]
    return {key: (odd_value(rng) if rng.random() < 0.05 else f"{key}-{rng.randrange(3)}")
            for key in keys[:rng.randrange(2, len(keys) + 1)]}


def random_record(rng):
    shape = rng.choice(SHAPES)
    record = {}
    for key in shape:
        if rng.random() < 0.05:
            continue  # the shape with a key missing
        if key == "kubernetes":
            record[key] = kubernetes(rng) if rng.random() < 0.9 else odd_value(rng)
        elif rng.random() < 0.9:  # the usual kind of value, so that shapes repeat
            record[key] = random_text(rng) if key in ("log", "message", "msg") else rng.choice(WORDS[:3])
        else:
            record[key] = odd_value(rng)
    return record


def random_chunk(rng, count):
    events = []
    for i in range(count):
        seconds = rng.choice([1_700_000_000 + i, 4_000_000_000, 0])
        head = rng.choice([[msgpack.ExtType(0, struct.pack(">II", seconds, rng.randrange(1_000_000_000))), {}],
                           seconds, seconds + rng.random(), 2 ** 40])
        events.append(msgpack.packb([head, random_record(rng)], use_bin_type=rng.random() < 0.7))
    return b"".join(events)


@pytest.mark.parametrize("field_format", FORMATS)
def test_random_records_same_as_python(field_format):
    rng = random.Random(f"fastformat {field_format}")
    chunks = [random_chunk(rng, 60) for _ in range(25)]
    native = compare(field_format, chunks)
    assert native.fast.table.known  # shapes were planned (or refused) on the way
