"""What differs between the Fluent Bit versions users run, through the ABI
test hosts: the 2.0+ API (bin/flb-test-host), 1.9's one-field API with an
unreadable page after it (bin/flb-test-host-1.9), a loader that exports no
Fluent Bit symbols (bin/flb-test-host-bare); where plugin log lines land;
a broken Python environment; endpoints that write JSON nulls."""
import json
import re
import time

import pytest

from tests.support.harness import HOST, HOST_1_9, HOST_BARE, base_options, make_chunk, numbered_records
from tests.pipeline.test_aggregation import assert_all_once, pod_records
from tests.telemetry.test_ops import free_port, sample, scrape

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2
FLUENT_BIT_LINE = re.compile(r"^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] \[ ?(error|warn|info|debug|trace)\] "
                             r"\[output:kinesis:kinesis\.\d+\] ")


def plugin_lines(text):
    return [line for line in text.splitlines() if "[output:kinesis:" in line]


def assert_once(kinesis, stream, records):
    contents = kinesis.read_all(stream)
    got = sorted(json.loads(r.data)["log"] for r in contents.records)
    assert got == sorted(r["log"] for r in records)


def test_fluent_bit_1_9_one_field_api_and_v1_chunks(kinesis, host, tmp_path):
    stream = kinesis.create_stream(shards=2)
    log_file = tmp_path / "fluent-bit.log"
    h = host(binary=HOST_1_9, env={"FLB_HOST_LOG_FILE": str(log_file)})
    assert h.init(**base_options(kinesis, stream)) == FLB_OK  # a read past the 8 bytes would crash
    records = numbered_records(3000, "v19")
    for part in (records[:1000], records[1000:]):
        assert h.flush(make_chunk(part, layout="v1")) == FLB_OK
    assert h.exit() == FLB_OK
    assert h.logs()["foreign"] == 0
    assert_once(kinesis, stream, records)
    lines = plugin_lines(log_file.read_text())  # through 1.9's exported flb_log_print: Log_File
    assert any("ready: stream=" in line for line in lines) and any("stopped after 3000" in line for line in lines)
    assert all(FLUENT_BIT_LINE.match(line) for line in lines)
    assert plugin_lines(h.log()) == []


def test_fluent_bit_1_9_log_level_is_info_unless_flb_log_level(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    quiet = host(binary=HOST_1_9)
    assert quiet.init(**base_options(kinesis, stream, log_level="debug")) == FLB_OK  # 1.9 cannot tell us
    assert quiet.flush(make_chunk(numbered_records(10), layout="v1")) == FLB_OK
    assert quiet.logs()["debug"] == 0 and quiet.logs()["info"] >= 1
    loud = host(binary=HOST_1_9, env={"FLB_LOG_LEVEL": "debug"})
    assert loud.init(**base_options(kinesis, stream, aggregation="true")) == FLB_OK
    # other records: the same chunk again would be a replay, which the default ledger skips
    assert loud.flush(make_chunk(numbered_records(10, "loud"), layout="v1")) == FLB_OK
    assert loud.logs()["debug"] >= 1


def test_2x_api_levels_come_from_the_instance(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, log_level="warn")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(10))) == FLB_OK
    counts = h.logs()
    assert counts["info"] == 0 and counts["foreign"] == 0
    h.configure(1, log_level="debug")
    assert h.init(1, **base_options(kinesis, stream, aggregation="true")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(10)), instance=1) == FLB_OK
    assert h.logs()["debug"] >= 1


def test_loader_without_fluent_bit_symbols_gets_fluent_bit_lines_on_stderr(kinesis, host):
    stream = kinesis.create_stream()
    h = host(binary=HOST_BARE)
    assert h.init(**base_options(kinesis, stream)) == FLB_OK
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
    assert h.exit() == FLB_OK
    lines = plugin_lines(h.log())
    assert any("ready: stream=" in line for line in lines)
    assert lines and all(FLUENT_BIT_LINE.match(line) for line in lines), lines


def test_every_line_goes_through_a_fluent_bit_thread_in_order(kinesis, host, tmp_path):
    """Init's lines are in Log_File when Init returns; lines from the metrics
    background thread too, on the next call; none from a thread Fluent Bit
    does not own (it would write them to stderr, past Log_File)."""
    stream = kinesis.create_stream(shards=2)
    log_file = tmp_path / "fluent-bit.log"
    h = host(env={"FLB_HOST_LOG_FILE": str(log_file)})
    assert h.init(**base_options(kinesis, stream, metrics_log_interval="0.2")) == FLB_OK
    at_init = plugin_lines(log_file.read_text())
    assert [line.split("] ", 3)[3].split(":")[0] for line in at_init[-1:]] == ["ready"]
    records = numbered_records(2000)
    for i in range(4):
        assert h.flush(make_chunk(records[i * 500:(i + 1) * 500])) == FLB_OK
        time.sleep(0.3)  # the summary thread logs meanwhile
    assert h.flush_concurrently([(0, "a", make_chunk(numbered_records(100, "p"))),
                                 (0, "b", make_chunk(numbered_records(100, "q")))]) == [FLB_OK, FLB_OK]
    assert h.exit() == FLB_OK
    counts = h.logs()
    assert counts["foreign"] == 0 and counts["cut"] == 0
    lines = plugin_lines(log_file.read_text())
    assert lines[:len(at_init)] == at_init
    assert sum("metrics: " in line for line in lines) >= 3  # background thread lines landed
    assert "stopped after 2200 records" in lines[-1] or any("stopped after 2200" in x for x in lines[-3:])
    assert counts["info"] == sum(" info] " in line for line in log_file.read_text().splitlines())
    assert "HOST-ERROR" not in h.log() and plugin_lines(h.log()) == []


@pytest.mark.parametrize("binary", [HOST, HOST_1_9], ids=["2.0+", "1.9"])
def test_background_lines_while_no_call_runs_land_at_once(kinesis, host, tmp_path, binary):
    """The metrics thread logs while Fluent Bit makes no call: the plugin's
    printer thread, under the engine's worker context, writes it at once."""
    log_file = tmp_path / "fluent-bit.log"
    h = host(binary=binary, env={"FLB_HOST_LOG_FILE": str(log_file)})
    assert h.init(**base_options(kinesis, kinesis.create_stream(), metrics_log_interval="0.2")) == FLB_OK
    deadline = time.monotonic() + 30
    while sum("metrics: " in line for line in plugin_lines(log_file.read_text())) < 3:
        assert time.monotonic() < deadline, log_file.read_text()
        time.sleep(0.1)
    counts = h.logs()
    assert counts["foreign"] == 0 and counts["adopted"] >= 3
    assert h.exit() == FLB_OK
    assert "stopped after 0 records" in plugin_lines(log_file.read_text())[-1]


def test_a_message_longer_than_fluent_bits_buffer_is_split_never_cut(kinesis, host, tmp_path):
    log_file = tmp_path / "fluent-bit.log"
    h = host(env={"FLB_HOST_LOG_FILE": str(log_file)})
    value = "".join(f"{i:05d}é" for i in range(1000))  # 7,000 bytes in one line
    assert h.init(**base_options(kinesis, "s", compression=value)) == FLB_ERROR
    counts = h.logs()
    assert counts["cut"] == 0 and counts["error"] >= 2
    lines = plugin_lines(log_file.read_text())
    parts = [re.sub(r" \(part \d+/\d+\)$", "", line.split("[output:kinesis:kinesis.0] ", 1)[1])
             for line in lines if "(part " in line]
    assert len(parts) >= 2 and all(len(line.encode()) < 4000 for line in lines)
    assert value in "".join(parts)


def test_broken_python_home_fails_init_with_one_line(kinesis, host):
    h = host(env={"PYTHONHOME": "/nonexistent"})
    assert h.init(**base_options(kinesis, "s")) == FLB_ERROR
    assert h.init(1, **base_options(kinesis, "s")) == FLB_ERROR  # again, and still alive
    counts = h.logs()
    log = h.log()
    assert counts["error"] == 2 and counts["foreign"] == 0
    assert "Fatal Python error" not in log and "Python path configuration" not in log
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) == 2 and all("cannot start Python: its standard library is not in /nonexistent/lib/python3"
                                   in line for line in lines), lines


def test_null_fields_read_as_absent_aggregation_keeps_working(kinesis, host):
    """kinesis-mock writes "EndingSequenceNumber": null for open shards and
    "ErrorCode": null for stored records."""
    stream = kinesis.create_stream(shards=3)
    kinesis.front.faults.answer_nulls = True
    h = host()
    assert h.init(**base_options(kinesis, stream, aggregation="true", partition_key="kubernetes->pod_name")) == FLB_OK
    records = pod_records(600, "nulls")
    assert h.flush(make_chunk(records)) == FLB_OK
    assert h.flush(make_chunk(pod_records(10, "plain"))) == FLB_OK
    assert kinesis.front.counters.entries_failed == 0
    kinesis.front.faults.answer_nulls = False
    assert "cannot be used" not in h.log() and "ListShards failed" not in h.log()
    assert "not delivered" not in h.log()
    contents = kinesis.read_all(stream)
    assert contents.aggregates >= 3 and contents.kinesis_records < 100
    assert_all_once(records + pod_records(10, "plain"), contents)


def test_aggregation_unusable_said_once_and_counted(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    kinesis.front.faults.list_shards_down = True
    port = free_port()
    h = host()
    assert h.init(**base_options(kinesis, stream, aggregation="true", metrics_port=port)) == FLB_OK
    for i in range(3):
        assert h.flush(make_chunk(pod_records(40, f"down{i}"))) == FLB_OK
    warnings = [line for line in h.log().splitlines() if "aggregation is on but cannot be used" in line]
    assert len(warnings) == 1 and "[ warn]" in warnings[0] and "ListShards failed" in warnings[0]
    assert sample(scrape(port), "fluentbit_kinesis_records_unaggregated_total", instance="kinesis.0") == 120
    kinesis.front.faults.list_shards_down = False
    h.exit()
