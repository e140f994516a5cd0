"""`make fuzz`, the Python half: atheris, coverage-guided on the plugin's
Python code (and on csrc/fastjson*.c when the Makefile built an instrumented
copy), with tests/support/differential.py as the oracle: the fast path and the
Python path agree byte for byte, field_format's native path and its Python
normalizer too, and no exception escapes.

    .venv/bin/python tests/fuzz/fuzz_shape.py [libFuzzer flags] CORPUS_DIR [SEED_DIRS]

Inputs that trip the oracle are written where -artifact_prefix says (make
fuzz: tests/fuzz_corpus/); counts go to FUZZ_STATS (a file) as it runs.
"""
import collections
import io
import os
import random
import struct
import sys
import time
from pathlib import Path

import atheris
import msgpack

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
differential = None  # imported by import_plugin


def import_plugin():
    """The plugin's modules, instrumented for coverage. FUZZ_FASTJSON_DIR: an
    instrumented _fastjson (tests/fuzz/build_fastjson_cov.py) shadows the
    normal build; it needs libFuzzer's coverage symbols, which atheris has
    (the copy of libFuzzer atheris loads: it is linked to it)."""
    global differential
    if os.environ.get("FUZZ_FASTJSON_DIR"):
        import fluentbit_kinesis
        fluentbit_kinesis.__path__.insert(0, os.environ["FUZZ_FASTJSON_DIR"])
        import fluentbit_kinesis._fastjson  # noqa: F401  (fails loudly rather than fall back)
    with atheris.instrument_imports(include=["fluentbit_kinesis", "tests.support.differential"]):
        from tests.support import differential


def random_value(rng, depth=0):
    """A value of any kind msgpack carries, edge cases first."""
    roll = rng.randrange(40)  # ext values and Timestamps (9, 10) are rare: the fast path declines them
    if roll == 0 and depth < 3:
        return {random_text(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if roll == 1 and depth < 3:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if roll in (2, 3):
        return random_text(rng)
    if roll == 4:
        return rng.randbytes(rng.randrange(6))  # a bin value
    if roll == 5:
        return rng.choice([0, -1, -2, 2**64 - 1, -2**63, 2**63, 127, 128, -32, -33])
    if roll == 6:
        return struct.unpack(">d", rng.randbytes(8))[0]
    if roll == 7:
        return rng.choice([2.0 ** rng.randrange(-1074, 1024), 10.0 ** rng.randrange(-300, 300), 0.1, -0.0])
    if roll == 8:
        return struct.unpack(">f", rng.randbytes(4))[0]
    if roll == 9:
        return msgpack.ExtType(rng.randrange(128), rng.randbytes(rng.choice([1, 2, 4, 8, 16, 3])))
    if roll == 10:
        return msgpack.Timestamp(rng.randrange(2**32), rng.randrange(10**9))
    if roll < 20:
        return rng.choice([None, True, False, "", "log", "kubernetes", "pod_name"])
    return random_text(rng)


def random_text(rng):
    """Text, sometimes with bytes that are not UTF-8 (kept as surrogateescape)."""
    pieces = ["log", "pod_name", "kubernetes", "a.b", "✓", "\n", "\"", "\\", "\x00", "\ufffd", "é",
              "level", "info", "-", "message", "src_ip", "10.0.0.1", "action", "login", "code", "@timestamp"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randrange(4)))
    if rng.random() < 0.2:
        text += bytes([rng.randrange(0x80, 0x100)]).decode("utf-8", "surrogateescape")
    return text


def containers(value, found):
    if type(value) in (dict, list):
        found.append(value)
        for item in (value.values() if type(value) is dict else value):
            containers(item, found)
    return found


def mutate(blob, max_size, seed):
    """Half the time libFuzzer's byte mutations; else, when the chunk decodes,
    one structural change (a value, a key, an event, a timestamp) re-packed,
    so most inputs stay chunks the fast path reads to the end."""
    rng = random.Random(seed)
    counts["mutations"] += 1
    options, data = differential.split(blob)
    try:
        if rng.random() < 0.5:
            raise ValueError
        events = list(msgpack.Unpacker(io.BytesIO(data), raw=False, unicode_errors="surrogateescape",
                                       strict_map_key=False, timestamp=0))
    except Exception:
        return atheris.Mutate(blob, max_size)
    action = rng.randrange(10)
    if action == 0 or not events:
        events.append([[msgpack.ExtType(0, struct.pack(">II", 1700000000, 0)), {}], {"log": random_value(rng)}])
    elif action == 1:
        events.insert(rng.randrange(len(events)), rng.choice(events))
    elif action == 2 and len(events) > 1:
        del events[rng.randrange(len(events))]
    elif action == 3:
        head = rng.choice([0, -1, -2, 1.5, float("nan"), 2**64 - 1, msgpack.Timestamp(1, 2),
                           msgpack.ExtType(0, rng.randbytes(8)), msgpack.ExtType(0, b"\xff\xff\xff\xff\0\0\0\0"),
                           [msgpack.ExtType(0, rng.randbytes(8)), random_value(rng)]])
        body = rng.choice(events)
        events[rng.randrange(len(events))] = [head, body[-1] if type(body) is list and body else body]
    elif action == 4:
        options = rng.randrange(256)
    elif action == 5:  # back to a record the fast path takes
        events[rng.randrange(len(events))] = [rng.randrange(2**32), {"log": random_text(rng).encode(
            "utf-8", "replace").decode(), "kubernetes": {"pod_name": "p"}}]
    else:
        target = rng.choice(containers(rng.choice(events), []) or [{}])
        if type(target) is dict:
            key = rng.choice(list(target) + [random_text(rng)]) if target else random_text(rng)
            target[key] = random_value(rng)
        elif target:
            target[rng.randrange(len(target))] = random_value(rng)
        else:
            target.append(random_value(rng))
    try:
        packed = b"".join(msgpack.packb(e, use_bin_type=True, unicode_errors="surrogateescape",
                                        use_single_float=rng.random() < 0.2) for e in events)
    except Exception:
        return atheris.Mutate(blob, max_size)
    out = bytes([options]) + packed
    counts["structural mutations"] += 1
    return out if len(out) <= max_size else atheris.Mutate(blob, max_size)


STATS = Path(os.environ.get("FUZZ_STATS", "/dev/null"))
counts = collections.Counter()
started = time.monotonic()


def one_input(blob):
    counts["inputs"] += 1
    # a divergence or any exception escaping either path stops the fuzzer with the input
    counts["fast path accepted" if differential.check_input(blob) else "fast path declined"] += 1
    if counts["inputs"] % 1000 == 0:
        write_stats()


def write_stats():
    lines = [f"{name}: {count}" for name, count in sorted((counts + differential.format_counts).items())]
    lines.append(f"seconds: {time.monotonic() - started:.0f}")
    STATS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import_plugin()
    atheris.Setup(sys.argv, one_input, custom_mutator=mutate)
    native = sys.modules.get("fluentbit_kinesis._fastjson")
    print(f"fuzz_shape: fast path {native.__file__ if native else 'not built'}", file=sys.stderr)
    atheris.Fuzz()
