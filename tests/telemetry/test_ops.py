"""Operations: dry_run and metrics, driven through the ABI test host."""
import re
import socket
import time
import urllib.request

from tests.support.harness import base_options, make_chunk, numbered_records

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^(fluentbit_kinesis_\w+)(\{[^}]*\})? (\S+)$", line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def sample(samples, name, **labels):
    """The value of `name` whose labels include `labels`."""
    found = [v for k, v in samples.items()
             if k.split("{")[0] == name and all(f'{l}="{v2}"' in k for l, v2 in labels.items())]
    assert len(found) == 1, f"{name} {labels}: {found} in {sorted(samples)}"
    return found[0]


def test_dry_run_sends_nothing_and_needs_no_aws(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    # no credentials at all: Init must not look for them, nor describe the stream
    h = host(env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                  "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                  "AWS_EC2_METADATA_DISABLED": "true", "FLB_LOG_LEVEL": "debug"})
    before = kinesis.front.counters.put_records_calls
    assert h.init(**base_options(kinesis, stream, dry_run="true", max_records_per_request=100,
                                 fixed_partition_key="pk-1")) == FLB_OK
    records = numbered_records(250)
    assert h.flush(make_chunk(records)) == FLB_OK
    assert h.exit() == FLB_OK
    assert kinesis.front.counters.put_records_calls == before
    assert kinesis.read_all(stream).data == []
    log = h.log()
    summaries = [line for line in log.splitlines() if "would have sent" in line]
    assert len(summaries) == 1  # rate limited: one line for three requests
    assert "would have sent 100 records" in summaries[0] and "to " + stream in summaries[0]
    requests = [line for line in log.splitlines() if "dry run: PutRecords of" in line]
    assert [re.search(r"of (\d+) records", x).group(1) for x in requests] == ["100", "100", "50"]
    assert "'pk-1'" in requests[0] and "r-0000000" in requests[0]
    assert "cannot describe" not in log and "250 records processed (dry run" in log
    assert "dry_run: records are prepared but not sent; AWS is not contacted" in log


def test_dry_run_off_by_default_and_validated(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(1, **base_options(kinesis, stream, dry_run="perhaps")) == FLB_ERROR
    assert "option 'dry_run': 'perhaps' is not a boolean" in h.log()


def test_metrics_endpoint_counts_what_was_sent(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    port = free_port()
    h = host()
    assert h.init(**base_options(kinesis, stream, metrics_port=port, max_records_per_request=200,
                                 backoff_increment="1ms", metrics_log_interval="0.3")) == FLB_OK
    records = numbered_records(500)
    kinesis.front.faults.entry_throttle_rate = 0.2
    assert h.flush(make_chunk(records)) == FLB_OK
    kinesis.front.faults.entry_throttle_rate = 0.0
    sent = kinesis.read_all(stream)
    assert len(sent.records) == 500
    counters = kinesis.front.counters
    m = scrape(port)
    name = "fluentbit_kinesis_"
    assert sample(m, name + "records_sent_total", instance="kinesis.0", stream=stream) == 500
    assert sample(m, name + "kinesis_records_sent_total") == 500
    assert sample(m, name + "bytes_sent_total") == sum(len(r.data) + len(r.partition_key.encode())
                                                       for r in sent.records)
    assert sample(m, name + "put_records_calls_total") == counters.put_records_calls
    assert counters.put_records_calls > 3  # 3 without retries
    assert sample(m, name + "retries_total") == 0  # throttled entries are paced, not retried
    throttled = {k: v for k, v in m.items() if k.startswith(name + "throttled_entries_total")}
    assert sum(throttled.values()) == counters.entries_failed > 0
    assert all('shard="shardId-' in k for k in throttled)
    paced = {k: v for k, v in m.items() if k.startswith(name + "pacing_delay_seconds_total")}
    assert paced and all('shard="shardId-' in k for k in paced) and sum(paced.values()) > 0
    shares = {k: v for k, v in m.items() if k.startswith(name + "pacing_share")}
    assert shares and all(0 < v <= 0.98 for v in shares.values()) and min(shares.values()) < 0.98
    assert sample(m, name + "aggregation_ratio") == 1.0
    assert sample(m, name + "dead_lettered_records_total") == 0
    assert sample(m, name + "last_error_timestamp_seconds") > 0
    assert "ProvisionedThroughputExceeded" in next(k for k in m if k.startswith(name + "last_error_info"))
    time.sleep(0.5)
    assert h.exit() == FLB_OK
    summaries = [line for line in h.log().splitlines() if "metrics: 500 records sent as 500" in line]
    assert len(summaries) >= 2  # periodic, and the last one at exit
    assert all("[ info]" in line and "PutRecords calls" in line for line in summaries)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
        raise AssertionError("listener still up after exit")
    except OSError:
        pass


def test_two_instances_share_a_port_with_instance_labels_and_dead_letters_count(kinesis, host, tmp_path):
    a, b = kinesis.create_stream(), kinesis.create_stream()
    port, other = free_port(), free_port()
    h = host()
    assert h.init(0, **base_options(kinesis, a, metrics_port=port)) == FLB_OK
    assert h.init(1, **base_options(kinesis, b, metrics_port=port, max_record_bytes=1024,
                                    dead_letter_file=tmp_path / "dead.jsonl")) == FLB_OK
    assert h.init(2, **base_options(kinesis, b, metrics_port=other)) == FLB_OK
    assert h.flush(make_chunk(numbered_records(30)), instance=0) == FLB_OK
    big = [{"log": "big", "pad": "x" * 2000}]
    assert h.flush(make_chunk(numbered_records(7) + big), instance=1) == FLB_OK
    m = scrape(port)
    assert sample(m, "fluentbit_kinesis_records_sent_total", instance="kinesis.0", stream=a) == 30
    assert sample(m, "fluentbit_kinesis_records_sent_total", instance="kinesis.1", stream=b) == 7
    assert sample(m, "fluentbit_kinesis_dead_lettered_records_total", instance="kinesis.1") == 1
    assert not any('instance="kinesis.2"' in k for k in m)
    assert sample(scrape(other), "fluentbit_kinesis_records_sent_total", instance="kinesis.2") == 0
    assert h.exit(0) == FLB_OK
    m = scrape(port)  # the listener stays for the instance still using it
    assert not any('instance="kinesis.0"' in k for k in m)
    assert sample(m, "fluentbit_kinesis_records_sent_total", instance="kinesis.1") == 7


def test_metrics_port_in_use_is_one_error_line_not_a_failed_start(kinesis, host):
    stream = kinesis.create_stream()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        h = host()
        assert h.init(**base_options(kinesis, stream, metrics_port=port)) == FLB_OK
        assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
        assert h.exit() == FLB_OK
    errors = [line for line in h.log().splitlines() if "[error]" in line]
    assert len(errors) == 1 and f"metrics: cannot listen on 127.0.0.1:{port}" in errors[0]
    assert len(kinesis.read_all(stream).data) == 5


def test_no_cmetrics_context_is_fine(kinesis, host):
    """The host's api hands out output_get_cmt_instance (as Fluent Bit 2.0+
    does) but it returns NULL: the plugin asks once per instance, then keeps
    its own names and serves metrics_port as usual."""
    stream = kinesis.create_stream()
    port = free_port()
    h = host()
    assert h.init(**base_options(kinesis, stream, metrics_port=port)) == FLB_OK
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
    assert int(h.command("stats").split()[4]) == 1
    assert sample(scrape(port), "fluentbit_kinesis_records_sent_total", instance="kinesis.0") == 5
    assert h.exit() == FLB_OK
    assert "in Fluent Bit's metrics" not in h.log()
