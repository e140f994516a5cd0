"""field_format under a real Fluent Bit (FLUENT_BIT=/path; skipped without
one): tail reads the fixtures as JSON lines (parser json), nine kinesis
outputs, one per format, each into its own stream; every record read back is
the reviewed expected output but for its time (tail stamps the read time), and
passes its schema's validator (OTLP/JSON through opentelemetry-proto, OCSF
through pydantic-ocsf, CEF lines through pycef)."""
import json

import pytest

from fluentbit_kinesis.pipeline.formats import FORMATS
from tests.e2e.test_fluent_bit import (assert_clean_exit_of_instances, classic_config, output_section,
                                      run_fluent_bit)
from tests.pipeline.field_format import test_validators as validators
from tests.pipeline.field_format.fixtures import FIXTURES, SOURCES, expected

EXPECTED = expected()
NAMES = list(FIXTURES) + [f"from_{name}" for name in SOURCES]
RECORDS = list(FIXTURES.values()) + list(SOURCES.values())
COPIES = 50  # of each fixture
# where each schema writes the event time: tail's read time differs from the fixtures'
TIME_FIELDS = {"ecs": ("@timestamp",), "cim": ("_time",), "asim": ("TimeGenerated", "EventStartTime", "EventEndTime"),
               "udm": ("metadata.event_timestamp",), "ocsf": ("time",), "cef": ("rt",), "leef": ("devTime",),
               "csl": ("TimeGenerated",), "otel": ("resourceLogs.0.scopeLogs.0.logRecords.0.timeUnixNano",)}


def without_time(record, field_format):
    record = json.loads(json.dumps(record))
    for dotted in TIME_FIELDS[field_format]:
        *parents, last = dotted.split(".")
        node = record
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node.pop(last, None)
    return record


def test_every_format_under_fluent_bit(fluent_bit, kinesis, tmp_path):
    streams = {name: kinesis.create_stream() for name in FORMATS}
    log_file = tmp_path / "app.log"
    with open(log_file, "w") as out:
        for _ in range(COPIES):
            for record in RECORDS:
                out.write(json.dumps(record) + "\n")
    (tmp_path / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    outputs = [output_section(kinesis, streams[name], field_format=name, workers=1) for name in FORMATS]
    config = classic_config(tmp_path, log_file, outputs).replace(
        "    plugins_file plugins.conf\n", "    plugins_file plugins.conf\n    parsers_file parsers.conf\n")
    config = config.replace("    read_from_head true\n", "    read_from_head true\n    parser json\n")
    (tmp_path / "fluent-bit.conf").write_text(config)
    count = COPIES * len(RECORDS)
    rc, log = run_fluent_bit(fluent_bit, ["-c", "fluent-bit.conf"], kinesis, count * len(FORMATS), tmp_path)
    assert "could not be normalized" not in log
    for name in FORMATS:
        got = [json.loads(data) for data in kinesis.read_all(streams[name]).data]
        assert len(got) == count, name
        wanted = sorted(json.dumps(without_time(EXPECTED[name][n], name), sort_keys=True) for n in NAMES) * COPIES
        assert sorted(json.dumps(without_time(r, name), sort_keys=True) for r in got) == sorted(wanted), name
        check = {"otel": _otel, "ocsf": _ocsf, "cef": _cef}.get(name)
        for record in got[:len(RECORDS)] if check else ():
            check(record)
    assert_clean_exit_of_instances(fluent_bit, rc, log)  # nine instances: Fluent Bit 1.9 crashes at exit


def _otel(record):
    from google.protobuf import json_format
    from opentelemetry.proto.logs.v1 import logs_pb2
    json_format.Parse(json.dumps(record), logs_pb2.LogsData())


def _ocsf(record):
    _, classes = validators._ocsf()
    record = json.loads(json.dumps(record))
    record.get("http_request", {}).pop("http_method", None)  # see test_validators: pydantic-ocsf reads it as a number
    classes[record["class_uid"]].model_validate(record)


def _cef(record):
    import pycef
    assert pycef.parse(validators.cef_line(record)) is not None


@pytest.mark.parametrize("option", ["field_format=gelf"])
def test_a_bad_field_format_fails_start_with_one_line(fluent_bit, option):
    import subprocess
    from tests.support.harness import PLUGIN
    proc = subprocess.run([fluent_bit, "-e", str(PLUGIN), "-i", "dummy", "-o", "kinesis", "-p", "region=us-east-1",
                           "-p", "stream=x", "-p", option], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    allowed = "allowed: none, ecs, cim, asim, udm, ocsf, cef, leef, csl, otel"
    assert (proc.stdout + proc.stderr).count(f"option 'field_format': 'gelf' is not valid; {allowed}") == 1
