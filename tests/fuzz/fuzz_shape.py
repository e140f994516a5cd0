"""`make fuzz`, the Python half: atheris, coverage-guided on the plugin's
Python code (and on csrc/fastjson.c when the Makefile built an instrumented
copy), with tests/differential.py as the oracle: the fast path and the
Python path agree byte for byte, and no exception escapes.

    .venv/bin/python tests/fuzz/fuzz_shape.py [libFuzzer flags] CORPUS_DIR [SEED_DIRS]

Inputs that trip the oracle are written where -artifact_prefix says (make
fuzz: tests/fuzz_corpus/); counts go to FUZZ_STATS (a file) as it runs.
"""
import collections
import os
import sys
import time
from pathlib import Path

import atheris

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
    with atheris.instrument_imports(include=["fluentbit_kinesis", "tests.differential"]):
        from tests import differential


STATS = Path(os.environ.get("FUZZ_STATS", "/dev/null"))
counts = collections.Counter()
started = time.monotonic()


def one_input(blob):
    counts["inputs"] += 1
    try:
        counts["fast path accepted" if differential.check_input(blob) else "fast path declined"] += 1
    except differential.Divergence:
        raise
    except Exception as exc:
        if not differential.known_escape(exc):
            raise
        counts[f"known escape (hardening branch): {type(exc).__name__}"] += 1
    if counts["inputs"] % 1000 == 0:
        write_stats()


def write_stats():
    lines = [f"{name}: {count}" for name, count in sorted(counts.items())]
    lines.append(f"seconds: {time.monotonic() - started:.0f}")
    STATS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import_plugin()
    atheris.Setup(sys.argv, one_input)
    native = sys.modules.get("fluentbit_kinesis._fastjson")
    print(f"fuzz_shape: fast path {native.__file__ if native else 'not built'}", file=sys.stderr)
    atheris.Fuzz()
