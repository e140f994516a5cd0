"""The native fast path (fastpath.py + csrc/fastjson.c) against the Python
path (events.decode_chunk + shaping.Shaper), which stays the reference: same
payloads, same partition keys, declines on what it does not handle, never
crashes on damaged input."""
import base64
import json
import math
import random
import struct
from types import SimpleNamespace

import msgpack
import orjson
import pytest

from fluentbit_kinesis.pipeline import fastpath
from fluentbit_kinesis.pipeline.events import decode_chunk
from fluentbit_kinesis.pipeline.keys import RandomKey
from fluentbit_kinesis.pipeline.shaping import ShapeError, Shaper
from tests.support.harness import base_options, make_chunk

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")

POD = ["kubernetes", "pod_name"]
MODES = [  # (partition key path, log_key, append_newline)
    (None, None, False),
    (POD, None, True),
    (["log"], None, False),
    (None, "log", False),
    (POD, "log", True),
]


def settings(key_path=None, log_key=None, newline=False, invalid_utf8="replace", **extra):
    values = dict(partition_key=key_path, fixed_partition_key=None, data_keys=None, time_key=None,
                  time_key_format="%Y-%m-%dT%H:%M:%S", replace_dots=None, log_key=log_key,
                  append_newline=newline, compression="none", max_record_bytes=1024 * 1024, invalid_utf8=invalid_utf8)
    values.update(extra)
    return SimpleNamespace(**values)


def reference(data, key_path, log_key, newline):
    """What the Python path makes of a chunk, in chunk_payloads' form; None
    when it would reject or dead-letter something at the decoding stage."""
    chunk = decode_chunk(data)
    if chunk.error or chunk.rejected:
        return None
    shaper = Shaper(settings(key_path, log_key, newline))
    out = []
    for timestamp, record in chunk.events:
        try:
            payload, altered = shaper.payload(timestamp, record)
            status = fastpath.STATUS_REPLACED if altered else fastpath.STATUS_OK
        except ShapeError:
            payload, status = b"", fastpath.STATUS_NO_LOG_KEY
        key = shaper.keys.of(record) if key_path is not None else None
        out.append((payload, key, status))
    return out


def same(fast, slow, exact=True):
    assert fast is not None, "fast path declined"
    assert len(fast) == len(slow)
    for (f_payload, f_key, f_status), (s_payload, s_key, s_status) in zip(fast, slow):
        assert (f_key, f_status) == (s_key, s_status)
        if exact or f_payload == s_payload:
            assert f_payload == s_payload
        else:  # floats: the same values, maybe written differently
            assert f_payload.endswith(b"\n") == s_payload.endswith(b"\n")
            assert orjson.loads(f_payload) == orjson.loads(s_payload)


def check(data, exact=True, modes=MODES):
    for key_path, log_key, newline in modes:
        same(fastpath.chunk_payloads(data, key_path, log_key, newline),
             reference(data, key_path, log_key, newline), exact)


# ---- a corpus -------------------------------------------------------------------

CORPUS = [
    {"log": "plain ascii", "stream": "stdout", "kubernetes": {"pod_name": "web-1", "labels": {"app": "x"}}},
    {"log": "ünïcödé ✓ 日本語 🎉", "kubernetes": {"pod_name": "pöd-✓"}},
    {"log": 'quotes " and \\ backslash / slash', "k\"ey\\": "v"},
    {"log": "".join(chr(c) for c in range(0x20)) + "\x7f\u2028\u2029", "ctl\n": "\t"},
    {"log": b"bin \xff\xfe value", "kubernetes": {"pod_name": b"bin-pod"}},
    {"log": b"\xe2\x82\xac ok then \xe2\x82 cut \xf0\x9f\x8e then \xed\xa0\x80 surrogate \xc0\xaf overlong \xf4\x90\x80\x80 big"},
    {"nested": [[1, [2, [3, {"a": [{}, []]}]]], {"b": {"c": {"d": None}}}], "empty_map": {}, "empty_list": []},
    {"ints": [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
              -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]},
    {"bools": [True, False, None]},
    {"log": 42, "kubernetes": {"pod_name": 7}},
    {"log": {"inner": "map"}, "kubernetes": "not a map"},
    {"log": ["a", 1], "kubernetes": {"pod_name": ""}},
    {"no_log_key": 1},
    {},
    {"": "", "a" * 300: "b" * 70000},
    {"kubernetes": {"pod_name": "p" * 300}},
]

FLOATS = [{"floats": [0.1, 1e300, -0.0, 0.0, 1.0, -1.5, 1e16, 1e15, 123456789.125, 1e-5, 1e-4, 5e-324,
                      2.2250738585072014e-308, 1.7976931348623157e308, 1 / 3, 2 / 3, 100.0, 1e22, 1e21,
                      0.30000000000000004, float("nan"), float("inf"), float("-inf")]},
          {"log": 1.25, "kubernetes": {"pod_name": 0.5}}]


@pytest.mark.parametrize("layout", ["v2", "v1", "v1-int", "v1-float"])
def test_corpus_same_as_python(layout):
    check(make_chunk(CORPUS, layout))


def test_floats_same_values():
    data = make_chunk(FLOATS)
    check(data, exact=False)
    small = [{"floats": [v for v in FLOATS[0]["floats"] if not 3e38 < abs(v) < math.inf]}]  # float32 range
    single = b"".join(msgpack.packb([0, record], use_single_float=True) for record in small + FLOATS[1:])
    check(single, exact=False)


def test_floats_written_as_orjson_does():
    fast = fastpath.chunk_payloads(make_chunk(FLOATS))
    assert [payload for payload, _, _ in fast] == [p for p, _, _ in reference(make_chunk(FLOATS), None, None, False)]


def test_group_markers_skipped():
    marker_start = msgpack.ExtType(0, struct.pack(">II", 0xFFFFFFFF, 0))
    marker_end = msgpack.ExtType(0, struct.pack(">II", 0xFFFFFFFE, 0))
    events = [
        [[marker_start, {"group": "meta"}], {"resource": {"x": 1}}],
        [[msgpack.ExtType(0, struct.pack(">II", 1700000000, 5)), {}], {"log": "one"}],
        [-1, {"group": 1}], [-2, [1, 2]], [-1.0, "body"], [[-2, {}], None],
        [1700000000, {"log": "two"}],
        [[marker_end, {}], {}],
    ]
    data = b"".join(msgpack.packb(event) for event in events)
    fast = fastpath.chunk_payloads(data)
    assert [payload for payload, _, _ in fast] == [b'{"log":"one"}', b'{"log":"two"}']
    check(data)


def test_invalid_utf8_replaced_as_cpython_does():
    """Every 2-byte sequence, and 3/4-byte sequences around every boundary, as
    str values (packed without bin types) and as a log_key value."""
    edges = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
             0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
    texts = [bytes([a, b]) for a in range(256) for b in range(256)]
    texts += [bytes([a, b, c]) for a in range(0xC2, 0x100) for b in edges for c in edges]
    texts += [bytes([a, b, c, d]) + tail for a in range(0xF0, 0xF6) for b in edges for c in edges[::3]
              for d in edges[::3] for tail in (b"", b"x")]
    events = [msgpack.packb([0, {"log": text}], use_bin_type=False) for text in texts]
    for start in range(0, len(events), 5000):
        check(b"".join(events[start:start + 5000]), modes=[(None, None, False), (None, "log", False)])


def test_partition_key_and_log_key_values():
    fast = fastpath.chunk_payloads(make_chunk(CORPUS), POD, "log", True)
    assert fast[0] == (b"plain ascii\n", "web-1", fastpath.STATUS_OK)
    assert fast[4][1] == "bin-pod"
    assert fast[9] == (b"42\n", None, fastpath.STATUS_OK)
    assert fast[12] == (b"", None, fastpath.STATUS_NO_LOG_KEY)
    assert fast[15][1] == "p" * 256


RAW_EVENT = b"\x92\xd7\x00" + struct.pack(">II", 1700000000, 0)  # [EventTime, then the body


@pytest.mark.parametrize("body", [
    pytest.param(msgpack.packb("a string body"), id="not-a-map"),
    pytest.param(msgpack.packb({"x": msgpack.ExtType(5, b"abc")}), id="ext-in-record"),
    pytest.param(msgpack.packb({"x": msgpack.ExtType(0, b"12345678")}), id="eventtime-in-record"),
    pytest.param(msgpack.packb({1: "int key"}, strict_map_key=False) if False else b"\x81\x01\xa1v", id="int-key"),
    pytest.param(b"\x81\xc4\x01k\xa1v", id="bin-key"),
    pytest.param(b"\x81\xa1\xff\xa1v", id="invalid-utf8-key"),
    pytest.param(b"\x82\xa1a\x01\xa1a\x02", id="duplicate-key"),
    pytest.param(b"\x81\xa1a" + b"\x91" * 70 + b"\xc0", id="too-deep"),
    pytest.param(b"\x81\xa1a\xc1", id="never-used-byte"),
    pytest.param(b"\x82\xa1a\x01", id="truncated"),
])
def test_declines_unusual(body):
    data = make_chunk([{"log": "fine"}]) + RAW_EVENT + body
    for key_path, log_key, newline in MODES:
        assert fastpath.chunk_payloads(data, key_path, log_key, newline) is None


@pytest.mark.parametrize("data", [
    pytest.param(msgpack.packb([1, 2, 3]), id="three-element-event"),
    pytest.param(msgpack.packb({"a": 1}), id="event-not-array"),
    pytest.param(msgpack.packb(["time", {"a": 1}]), id="string-timestamp"),
    pytest.param(msgpack.packb([None, {"a": 1}]), id="nil-timestamp"),
    pytest.param(msgpack.packb([[], {"a": 1}]), id="empty-head"),
    pytest.param(msgpack.packb([[msgpack.ExtType(0, b"1234"), {}], {"a": 1}]), id="short-eventtime"),
    pytest.param(msgpack.packb([[1, {(1, 2): 3}], {"a": 1}]), id="unhashable-metadata-key"),
    pytest.param(make_chunk([{"a": 1}])[:-1], id="truncated-chunk"),
])
def test_declines_odd_events(data):
    assert fastpath.chunk_payloads(data) is None


def test_empty_chunk():
    assert fastpath.chunk_payloads(b"") == []


# ---- random records ------------------------------------------------------------------

def random_text(rng):
    kind = rng.random()
    if kind < 0.5:
        return "".join(rng.choice("abcdefghij klmnop/:-_.0123456789") for _ in range(rng.randrange(40)))
    if kind < 0.8:
        return "".join(chr(rng.choice([rng.randrange(0x20), rng.randrange(0x20, 0x80), rng.randrange(0x80, 0x800),
                                       rng.randrange(0x800, 0xD800), rng.randrange(0xE000, 0x110000)]))
                       for _ in range(rng.randrange(20)))
    return rng.choice(['"', "\\", "\\\"", "\n\r\t\b\f", "\x00", "\x1f\x7f"]) * rng.randrange(1, 4)


def random_bytes(rng):
    if rng.random() < 0.5:  # mostly valid UTF-8 with some damage
        raw = bytearray(random_text(rng).encode())
        for _ in range(rng.randrange(3)):
            raw.insert(rng.randrange(len(raw) + 1), rng.randrange(0x80, 0x100))
        return bytes(raw)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(12)))


def random_float(rng, single):
    kind = rng.random()
    if kind < 0.3:
        value = rng.choice([0.1, 0.5, -0.0, 1e300, 1e-300, 3.14, 1e16, 1e-5, 2.5e15, float("nan"), float("inf")])
    elif kind < 0.7:
        value = rng.uniform(-1, 1) * 10 ** rng.randrange(-30, 30)
    else:
        value = struct.unpack(">d", rng.randbytes(8))[0]
    if single:
        value = struct.unpack(">f", struct.pack(">f", value if math.isnan(value) or abs(value) < 3e38 else 1.5))[0]
    return value


def random_value(rng, depth, floats, single):
    roll = rng.random()
    if depth < 4 and roll < 0.12:
        return {random_text(rng): random_value(rng, depth + 1, floats, single) for _ in range(rng.randrange(5))}
    if depth < 4 and roll < 0.22:
        return [random_value(rng, depth + 1, floats, single) for _ in range(rng.randrange(5))]
    if roll < 0.5:
        return random_text(rng)
    if roll < 0.65:
        return random_bytes(rng)  # bin, or an invalid str when packed without bin types
    if roll < 0.8:
        return rng.choice([0, 1, -1, 2**64 - 1, -2**63, 2**63, rng.randrange(-2**63, 2**64), rng.randrange(-200, 200)])
    if roll < 0.9 and floats:
        return random_float(rng, single)
    return rng.choice([None, True, False])


def random_record(rng, floats):
    single = floats and rng.random() < 0.3
    record = {random_text(rng): random_value(rng, 1, floats, single) for _ in range(rng.randrange(6))}
    if rng.random() < 0.8:
        record["log"] = rng.choice([random_text(rng), random_bytes(rng), random_value(rng, 2, floats, single)])
    if rng.random() < 0.8:
        record["kubernetes"] = rng.choice([{"pod_name": random_value(rng, 3, floats, single)},
                                           {"pod_name": random_text(rng)}, {"other": 1}, "flat"])
    return record, single


def random_chunk(rng, count, floats):
    events, records = [], []
    for i in range(count):
        record, single = random_record(rng, floats)
        head = rng.choice([[msgpack.ExtType(0, struct.pack(">II", 1700000000 + i, 0)), {}],
                           msgpack.ExtType(0, struct.pack(">II", 1700000000 + i, 0)), 1700000000 + i, 1.7e9 + i])
        use_bin = rng.random() < 0.7  # without bin types, bytes are written as (maybe invalid) str
        events.append(msgpack.packb([head, record], use_bin_type=use_bin, use_single_float=single))
        records.append(record)
    return b"".join(events), records


@pytest.mark.parametrize("floats", [False, True], ids=["exact", "floats"])
def test_random_records_same_as_python(floats):
    rng = random.Random(20261122 + floats)
    total = 0
    for _ in range(50):
        data, records = random_chunk(rng, 50, floats)
        check(data, exact=True)  # floats too: see test_float_text_byte_identical
        total += len(records)
    assert total >= 2500


def test_float_text_byte_identical():
    """Floats are written like orjson: the shortest text that reads back the same, same layout."""
    rng = random.Random(7)
    values = [random_float(rng, single) for single in (False, True) for _ in range(5000)]
    data = make_chunk([{"f": v} for v in values])
    fast = fastpath.chunk_payloads(data)
    slow = reference(data, None, None, False)
    assert [payload for payload, _, _ in fast] == [payload for payload, _, _ in slow]


# ---- damaged input --------------------------------------------------------------------

def test_fuzz_never_crashes_and_agrees_when_accepting():
    rng = random.Random(99)
    base, _ = random_chunk(rng, 20, floats=False)
    base += make_chunk(CORPUS[:6])
    accepted = 0
    for _ in range(5000):
        data = bytearray(base)
        action = rng.random()
        if action < 0.4:
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif action < 0.6:
            del data[rng.randrange(len(data)):]
        elif action < 0.8:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randrange(1, 9))
        else:
            at = rng.randrange(len(data))
            del data[at:at + rng.randrange(1, 9)]
        data = bytes(data)
        key_path, log_key, newline = rng.choice(MODES)
        fast = fastpath.chunk_payloads(data, key_path, log_key, newline)
        if fast is not None:
            accepted += 1
            same(fast, reference(data, key_path, log_key, newline))
    assert accepted > 50  # some mutations land in text and stay valid


# ---- the Shaper -------------------------------------------------------------------------

def test_shaper_uses_fast_path_and_falls_back():
    records = [{"log": f"line {i}", "kubernetes": {"pod_name": f"pod-{i % 3}"}} for i in range(10)]
    shaper = Shaper(settings(POD, None, True))
    shaped = shaper.shape_chunk(make_chunk(records))
    assert shaped.path == "fast"
    python = shaper.shape(decode_chunk(make_chunk(records)).events)
    assert python.path == "python" and shaped.entries == python.entries
    # a setting only Python handles, and a chunk the fast path declines
    assert Shaper(settings(time_key="t")).shape_chunk(make_chunk(records)).path == "python"
    odd = make_chunk(records) + msgpack.packb([1, "not a map"])
    shaped = shaper.shape_chunk(odd)
    assert shaped.path == "python" and len(shaped.decoded.rejected) == 1 and len(shaped.entries) == 10
    assert shaped.dead_letter_count() == 1 and [d.original[0] for d in shaped.dead_letters()] == ["raw"]


@pytest.mark.parametrize("options", [dict(compression="zlib"), dict(fixed_partition_key="fixed"),
                                     dict(max_record_bytes=1100)], ids=["zlib", "fixed-key", "small-limit"])
def test_shaper_fast_and_python_agree(options):
    records = [{"log": "x" * (i * 10), "kubernetes": {"pod_name": f"pod-{i % 3}"}} for i in range(20)]
    records += [{"log": "no pod"}, {"log": "y" * 1100, "kubernetes": {"pod_name": "big"}}]
    key_path = None if "fixed_partition_key" in options else POD
    shaper = Shaper(settings(key_path, None, True, **options))
    fast = shaper.shape_chunk(make_chunk(records))
    assert fast.path == "fast"
    python = shaper.shape(decode_chunk(make_chunk(records)).events)
    assert [e[0::2] for e in fast.entries] == [e[0::2] for e in python.entries]
    assert [e[1] for e in fast.entries if type(e[1]) is not RandomKey] == \
        [e[1] for e in python.entries if type(e[1]) is not RandomKey]  # random keys differ
    assert [r[:2] for r in fast.rejected] == [r[:2] for r in python.rejected]
    assert len(fast.rejected) == (1 if "max_record_bytes" in options else 0)
    assert fast.random_keys == python.random_keys


def test_without_the_module_python_does_it_all(monkeypatch):
    monkeypatch.setattr(fastpath, "AVAILABLE", False)
    data = make_chunk(CORPUS)
    assert fastpath.chunk_payloads(data, POD, None, False) is None
    shaper = Shaper(settings(POD))
    shaped = shaper.shape_chunk(data)
    assert shaper.fast is None and shaped.path == "python" and len(shaped.entries) == len(CORPUS)


def test_shaper_rejections_keep_the_record():
    records = [{"log": "ok"}, {"other": 1}, {"log": "x" * 2000}]
    shaper = Shaper(settings(None, "log", False, max_record_bytes=1000))
    shaped = shaper.shape_chunk(make_chunk(records))
    assert shaped.path == "fast"
    assert [index for _, _, index in shaped.entries] == [0]
    (missing, reason, key, payload), (big, _, big_key, big_payload) = shaped.rejected
    assert (missing, key, payload) == (1, None, None) and "log_key" in reason
    assert big == 2 and big_payload == b"x" * 2000 and big_key
    assert shaped.originals[missing] == ("msgpack", msgpack.packb({"other": 1}))  # packed for its dead letter
    python = shaper.shape(decode_chunk(make_chunk(records)).events)
    assert [r[:2] for r in shaped.rejected] == [r[:2] for r in python.rejected]


# ---- through the plugin -------------------------------------------------------------------

def test_plugin_sends_fast_payloads_and_dead_letters_whole_records(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, log_key="log", partition_key="kubernetes->pod_name",
                                 append_newline="true", dead_letter_file=dead)) == 1
    records = [{"log": "ünï \x01 line", "kubernetes": {"pod_name": "pod-a"}}, {"log": {"n": [1, 0.5]}},
               {"other": b"no log key \xff"}, {"log": b"raw \xff bytes"}]
    assert h.flush(make_chunk(records)) == 1
    got = kinesis.read_all(stream).data
    assert sorted(got) == sorted(["ünï \x01 line\n".encode(), b'{"n":[1,0.5]}\n', b"raw \xff bytes\n"])
    [line] = [json.loads(x) for x in dead.read_text().splitlines()]
    assert line["reason"] == "log_key 'log' is not in the record" and line["format"] == "msgpack"
    assert msgpack.unpackb(base64.b64decode(line["data"])) == {"other": b"no log key \xff"}


# ---- issue 9: floats, ext codes, invalid UTF-8 ------------------------------------------

def float_payloads(values):
    """The fast path's and orjson's text of each float, as lists."""
    data = msgpack.packb([0, {"f": values}])
    [(payload, _, _)] = fastpath.chunk_payloads(data)
    want = orjson.dumps({"f": values})
    return payload[6:-2].split(b","), want[6:-2].split(b",")


def test_floats_every_power_of_two_and_its_neighbours_byte_identical():
    """The shortest digits of a power of two can be the second-nearest ones
    (2^-24: 5.960464477539063e-8, not ...0625e-8): every one of them, both
    signs, three neighbours each way, and those of powers of ten."""
    values = []
    for v in [math.ldexp(1.0, e) for e in range(-1074, 1024)] + [10.0 ** e for e in range(-307, 309)]:
        up = down = v
        values.append(v)
        for _ in range(3):
            up, down = math.nextafter(up, math.inf), math.nextafter(down, 0.0)
            values += [up, down]
    values = [v for v in values if math.isfinite(v)]
    values += [-v for v in values]
    fast, want = float_payloads(values)
    assert fast == want
    assert b"5.960464477539063e-8" in fast


def test_floats_random_bit_patterns_byte_identical():
    rng = random.Random(24)
    doubles = [struct.unpack(">d", rng.randbytes(8))[0] for _ in range(300_000)]
    singles = [struct.unpack(">f", rng.randbytes(4))[0] for _ in range(100_000)]
    for values in (doubles, singles):
        values = [v for v in values if math.isfinite(v)]
        fast, want = float_payloads(values)
        assert fast == want


@pytest.mark.parametrize("code", [-1, -2, -36, -128])
@pytest.mark.parametrize("where", ["metadata-value", "metadata-key", "metadata-array", "record"])
def test_negative_ext_codes_decline(code, where):
    """msgpack refuses ext codes below 0 (-1 is its Timestamp): the fast path
    must not accept a chunk Python cannot decode (the issue's reproducer:
    92920081a16dd4dc0181a162a179 with log_key log)."""
    ext = b"\xd6" + struct.pack(">b", code) + b"\x00\x00\x00\x01"  # 4 bytes: a valid Timestamp for -1
    head = {"metadata-value": b"\x92\x00\x81\xa1m" + ext, "metadata-key": b"\x92\x00\x81" + ext + b"\x01",
            "metadata-array": b"\x93\x00\xc0" + ext, "record": b"\x92\x00\x80"}[where]
    body = b"\x81\xa1m" + ext if where == "record" else b"\x81\xa1b\xa1y"
    data = make_chunk([{"log": "fine"}]) + b"\x92" + head + body
    for key_path, log_key, newline in MODES:
        assert fastpath.chunk_payloads(data, key_path, log_key, newline) is None
    assert fastpath.chunk_payloads(bytes.fromhex("92920081a16dd4dc0181a162a179"), None, "log") is None


def test_replaced_status_bit_only_where_text_was_replaced():
    records = [{"log": "valid ✓"}, {"log": b"\xff bin"}, {"other": b"fine bin", "log": "x"},
               {"log": "ok", "deep": [{"k": b"\xc3\x28"}]}, {"log": b"valid bin \xe2\x9c\x93"}]
    data = make_chunk(records)
    plain = [status for _, _, status in fastpath.chunk_payloads(data)]
    assert plain == [0, fastpath.STATUS_REPLACED, 0, fastpath.STATUS_REPLACED, 0]
    # log_key: a bin value is sent raw (nothing replaced); other fields are not sent
    assert [s for _, _, s in fastpath.chunk_payloads(data, log_key="log")] == [0, 0, 0, 0, 0]
    strings = b"".join(msgpack.packb([0, r], use_bin_type=False) for r in records)  # invalid str values
    assert [s for _, _, s in fastpath.chunk_payloads(strings, log_key="log")] == [0, 2, 0, 0, 0]
    # base64: Python writes base64 text, so any bin value or invalid string declines
    assert fastpath.chunk_payloads(data, invalid_utf8="base64") is None
    assert fastpath.chunk_payloads(strings, log_key="log", invalid_utf8="base64") is None
    assert fastpath.chunk_payloads(make_chunk(CORPUS[:4]), invalid_utf8="base64") is not None


@pytest.mark.parametrize("mode", ["replace", "base64", "dead_letter"])
def test_invalid_utf8_modes_fast_and_python_agree(mode):
    """Random records full of bin values and invalid strings, through
    tests/support/differential.py's oracle (payloads, keys, rejections, counts)."""
    from tests.support import differential
    rng = random.Random(len(mode))
    accepted = 0
    valid = make_chunk(CORPUS[:4] + CORPUS[6:])  # no bin value, no invalid string
    for data in [valid] + [random_chunk(rng, 30, floats=True)[0] for _ in range(30)]:
        for key_path, log_key, newline in MODES:
            settings = differential.config.Settings(partition_key=key_path, log_key=log_key,
                                                    append_newline=newline, invalid_utf8=mode)
            accepted += differential.compare(settings, data)
    assert accepted >= (len(MODES) if mode == "base64" else 100)


def test_invalid_utf8_python_path():
    """What each mode makes of a bin value and an invalid string (str keys too)."""
    records = [{"s": "bad \udcff str", "b": b"\xc3\x28 bin", "ok": b"text", "k\udcfe": 1}, {"fine": "✓"}]
    shaped = {mode: Shaper(settings(invalid_utf8=mode)).shape([(0, r) for r in records])
              for mode in ("replace", "base64", "dead_letter")}
    assert [e[0] for e in shaped["replace"].entries] == [
        '{"s":"bad \ufffd str","b":"\ufffd( bin","ok":"text","k\ufffd":1}'.encode(), '{"fine":"✓"}'.encode()]
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    assert shaped["base64"].entries[0][0] == orjson.dumps(
        {"s": b64(b"bad \xff str"), "b": b64(b"\xc3\x28 bin"), "ok": b64(b"text"), b64(b"k\xfe"): 1})
    assert [r[:2] for r in shaped["dead_letter"].rejected] == [(0, "record has invalid UTF-8 (invalid_utf8 dead_letter)")]
    assert [e[2] for e in shaped["dead_letter"].entries] == [1]
    assert [shaped[m].invalid_utf8 for m in ("replace", "base64", "dead_letter")] == [1, 1, 1]


@pytest.mark.parametrize("mode", ["replace", "base64", "dead_letter"])
def test_invalid_utf8_through_the_plugin(mode, kinesis, host, tmp_path):
    from tests.telemetry.test_ops import free_port, sample, scrape
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    port = free_port()
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, invalid_utf8=mode, metrics_port=port)) == 1
    good = {"log": "valid ✓", "b": b"valid bin"}
    bad = {"log": b"latin-1 \xe9t\xe9", "n": 1}
    for use_bin in (True, False):  # as a bin value, then as an invalid str
        data = b"".join(msgpack.packb([0, r], use_bin_type=use_bin) for r in (good, bad))
        assert h.flush(data) == 1
    got = [orjson.loads(x) for x in kinesis.read_all(stream).data]
    text = {"replace": "latin-1 \ufffdt\ufffd", "base64": base64.b64encode(b"latin-1 \xe9t\xe9").decode()}
    # base64 encodes every bin value, valid or not; a valid str stays text
    good_b = base64.b64encode(b"valid bin").decode() if mode == "base64" else "valid bin"
    expected = [{"log": "valid ✓", "b": good_b}, {"log": "valid ✓", "b": "valid bin"}]
    if mode != "dead_letter":
        expected += [{"log": text[mode], "n": 1}] * 2
    assert sorted(map(str, got)) == sorted(map(str, expected))
    assert sample(scrape(port), "fluentbit_kinesis_invalid_utf8_records_total") == (3 if mode == "base64" else 2)
    warnings = [line for line in h.log().splitlines() if "records with invalid UTF-8 or bin values" in line]
    assert len(warnings) == 1 and f"(invalid_utf8 {mode})" in warnings[0]  # rate limited: one line a minute
    if mode == "dead_letter":
        lines = [json.loads(x) for x in dead.read_text().splitlines()]
        assert [line["reason"] for line in lines] == ["record has invalid UTF-8 (invalid_utf8 dead_letter)"] * 2
        # the record as it came, bytes and all
        assert [msgpack.unpackb(base64.b64decode(line["data"]), raw=True)[b"log"] for line in lines] == \
            [b"latin-1 \xe9t\xe9"] * 2
    else:
        assert not dead.exists()
    assert h.exit() == 1


def test_invalid_utf8_option_validated(kinesis, host, tmp_path):
    message = "option 'invalid_utf8': 'drop' is not valid; allowed: replace, base64, dead_letter"
    h = host()
    assert h.init(**base_options(kinesis, "s", invalid_utf8="drop")) == 0
    errors = [line for line in h.log().splitlines() if "[error]" in line]
    assert len(errors) == 1 and message in errors[0]
    # `check` says the same offline, and shows the value when it is valid
    import io
    from fluentbit_kinesis.tools.cli import run_check
    conf = tmp_path / "fluent-bit.conf"
    for value, expected in (("drop", message), ("dead_letter", "invalid_utf8                       dead_letter")):
        conf.write_text(f"[OUTPUT]\n    Name kinesis\n    Match *\n    region us-east-1\n    stream s\n"
                        f"    invalid_utf8 {value}\n")
        out = io.StringIO()
        assert run_check(str(conf), environ={}, out=out) == (1 if value == "drop" else 0)
        assert expected in out.getvalue()
