"""Replays tests/fuzz_corpus/ (what `make fuzz` found, plus the issue's
reproducers and seeds) on every `make test`: the fast path and the Python
path agree byte for byte under each input's options and its neighbours, no
exception escapes, and the reproducers go through the test host's flush:
it answers OK, the good records are in the stream, the bad ones in the
dead-letter file."""
import json

import pytest

from fluentbit_kinesis.pipeline import fastpath
from tests.support import differential
from tests.support.harness import base_options

FILES = sorted(p for p in differential.CORPUS.iterdir() if p.is_file())
REPRODUCERS = [p for p in FILES if p.name.startswith(("issue9-", "crash-", "invalid-utf8-"))]


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fast_and_python_paths_agree(path):
    blob = path.read_bytes()
    options, data = differential.split(blob)
    # the file's own options, then every partition key / log_key / newline / invalid_utf8 mix
    for variant in [options] + [(options & 0xC0) | low for low in range(64)]:
        differential.check_input(bytes([variant]) + data)  # a divergence or an escaping exception fails


def test_corpus_holds_the_issue_reproducers():
    names = {p.name for p in FILES}
    assert {"issue9-negative-ext-in-metadata", "issue9-bin-timestamp-of-length-0",
            "issue9-float-2-pow-minus-24"} <= names
    assert len(FILES) >= 20


def plugin_options(settings):
    options = {"invalid_utf8": settings.invalid_utf8, "append_newline": str(settings.append_newline).lower(),
               "compression": settings.compression, "max_record_bytes": settings.max_record_bytes}
    if settings.partition_key:
        options["partition_key"] = "->".join(settings.partition_key)
    if settings.log_key:
        options["log_key"] = settings.log_key
    if settings.time_key:
        options.update(time_key=settings.time_key, time_key_format=settings.time_key_format)
    if settings.replace_dots:
        options["replace_dots"] = settings.replace_dots
    if settings.data_keys:
        options["data_keys"] = ",".join(settings.data_keys)
    return options


@pytest.mark.parametrize("python_only", [False, True], ids=["fast-path-options", "python-only-options"])
@pytest.mark.parametrize("path", REPRODUCERS, ids=[p.name for p in REPRODUCERS])
def test_reproducer_through_flush(path, python_only, kinesis, host, tmp_path):
    options_byte, data = differential.split(path.read_bytes())
    settings = (differential.python_only_settings if python_only else differential.settings_for)(options_byte)
    # what the Python path (the reference) makes of the chunk
    chunk, expected = differential.python_path(differential.Shaper(settings), data)
    stream = kinesis.create_stream()
    dead = tmp_path / "dead.jsonl"
    h = host()
    assert h.init(**base_options(kinesis, stream, dead_letter_file=dead, **plugin_options(settings))) == 1
    assert h.flush(data) == 1, h.log()
    got = kinesis.read_all(stream).data
    assert sorted(got) == sorted(payload for payload, _, _ in expected.entries)
    lines = [json.loads(line) for line in dead.read_text().splitlines()] if dead.exists() else []
    reasons = [reason for _, reason, _, _ in expected.rejected] + [run.reason for run in chunk.rejected]
    reasons += [chunk.error] if chunk.error else []
    assert sorted(line["reason"] for line in lines) == sorted(reasons)
    assert h.exit() == 1
