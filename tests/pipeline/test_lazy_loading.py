"""What only some options need is loaded when they are set, not at start:
field_format's tables, ISA-L for zlib/gzip, the KPL varint table of the
Python aggregate writer. Each still works when first used."""
import subprocess
import sys

from fluentbit_kinesis.pipeline import kpl

CHECK = """
import sys
from fluentbit_kinesis import config
from fluentbit_kinesis.pipeline.shaping import Shaper
from fluentbit_kinesis.pipeline import kpl
settings = config.load({{"region": "us-east-1", "stream": "s", **{options}}}.get)
Shaper(settings)
print(sorted(m for m in sys.modules if m.startswith(("isal", "fluentbit_kinesis.pipeline.formats",
                                                     "fluentbit_kinesis.pipeline.fastformat"))))
print(len(kpl._VARINTS))
"""


def loaded(options):
    out = subprocess.run([sys.executable, "-c", CHECK.format(options=options)], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    return eval(out[0]), int(out[1])


def test_the_defaults_load_none_of_it():
    assert loaded({}) == ([], 0)


def test_field_format_loads_its_tables_when_set():
    modules, _ = loaded({"field_format": "ecs"})
    assert "fluentbit_kinesis.pipeline.formats.table" in modules
    assert "fluentbit_kinesis.pipeline.fastformat" in modules


def test_zlib_and_gzip_load_isal_when_set():
    for name in ("zlib", "gzip"):
        modules, _ = loaded({"compression": name})
        assert "isal.isal_zlib" in modules


def test_the_varint_table_is_made_at_the_first_aggregate_and_writes_every_length(monkeypatch):
    records = [(0, b"x" * n) for n in (0, 1, 127, 128, 300, 16383, 16384, 70000)]
    monkeypatch.setattr(kpl, "_VARINTS", [])
    first = kpl.encode(["k"], records)  # makes the table
    assert len(kpl._VARINTS) == 1 << 14
    assert all(kpl._VARINTS[n] == kpl.varint(n) for n in (0, 127, 128, 16383))
    assert kpl.encode(["k"], records) == first
    assert b"\x1a" + kpl.varint(2 + 3 + 300) + b"\x08\x00\x1a" + kpl.varint(300) + b"x" * 300 in first
