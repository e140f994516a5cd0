"""Aggregation (KPL, shard aware), simple_aggregation and compression,
driven through the ABI test host against moto; streams are read back with
the KCL's rule (an aggregate with a sub-record outside its shard is dropped)."""
import base64
import collections
import hashlib
import json
import random
import re

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from fluentbit_kinesis.aggregation import MAGIC, encode
from fluentbit_kinesis.compression import decompress
from tests.conftest import base_options, make_chunk
from tests.streams import messages_pb2

FLB_ERROR, FLB_OK, FLB_RETRY = 0, 1, 2


def pod_records(count, prefix, pods=50, seed=1):
    rng = random.Random(seed)
    return [{"log": f"{prefix}-{i:07d} " + "x" * rng.randrange(20, 200), "n": i,
             "kubernetes": {"pod_name": f"pod-{rng.randrange(pods)}", "namespace": "default"}}
            for i in range(count)]


def by_log(contents, codec="none"):
    """log -> list of (record, partition key) for every user record read."""
    found = collections.defaultdict(list)
    for r in contents.records:
        record = json.loads(decompress(codec, r.data))
        found[record["log"]].append((record, r.partition_key))
    return found


def assert_all_once(records, contents, codec="none", key_of=None):
    found = by_log(contents, codec)
    missing = [r["log"] for r in records if r["log"] not in found]
    twice = [log for log, got in found.items() if len(got) > 1]
    assert not missing, f"{len(missing)} missing, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} duplicated, e.g. {twice[:3]}"
    assert len(found) == len(records)
    for r in records:
        [(got, key)] = found[r["log"]]
        assert got == r
        if key_of is not None:
            assert key == key_of(r)


def pod_key(record):
    return record["kubernetes"]["pod_name"]


# ---- the encoder, against independent decoders --------------------------------

def test_encoder_matches_protobuf_and_aws_kinesis_agg_decodes_it():
    rng = random.Random(3)
    keys = ["pod-1", "é" * 256, "k"]
    records = [(rng.randrange(3), rng.randbytes(rng.choice([0, 1, 127, 128, 300, 16384, 70000])))
               for _ in range(60)]
    blob = encode(keys, records)
    assert blob.startswith(MAGIC)
    body = blob[len(MAGIC):-16]
    assert hashlib.md5(body).digest() == blob[-16:]
    expected = messages_pb2.AggregatedRecord()
    expected.partition_key_table.extend(keys)
    for index, data in records:
        sub = expected.records.add()
        sub.partition_key_index, sub.data = index, data
    assert body == expected.SerializeToString()  # byte for byte, as protobuf itself writes it

    boto3_style = {"Data": blob, "PartitionKey": "a", "SequenceNumber": "1",
                   "ApproximateArrivalTimestamp": 0}
    users = list(iter_deaggregate_records([boto3_style], data_format="Boto3"))
    # it hands user records back base64 encoded, as a Lambda event carries them
    assert [(u["kinesis"]["partitionKey"], base64.b64decode(u["kinesis"]["data"])) for u in users] == \
        [(keys[i], d) for i, d in records]


# ---- shard-aware aggregation -------------------------------------------------

@pytest.mark.parametrize("keyed", [True, False], ids=["partition_key", "no_key"])
def test_aggregates_are_never_dropped_and_hold_every_record_once(kinesis, host, keyed):
    stream = kinesis.create_stream(shards=4)
    h = host()
    options = dict(aggregation="true")
    if keyed:
        options["partition_key"] = "kubernetes->pod_name"
    assert h.init(**base_options(kinesis, stream, **options)) == FLB_OK
    records = pod_records(6000, "agg")
    for start in range(0, len(records), 2000):
        assert h.flush(make_chunk(records[start:start + 2000])) == FLB_OK
    contents = kinesis.read_all(stream)
    assert contents.dropped_aggregates == 0 and contents.dropped_records == 0
    assert_all_once(records, contents, key_of=pod_key if keyed else None)
    assert all(r.aggregated for r in contents.records)
    assert contents.kinesis_records <= 3 * 4  # one aggregate per shard per flush
    assert len({r.shard_id for r in contents.records}) == 4  # spread over every shard
    if not keyed:  # one random key per shard, hashing into it
        assert len({r.partition_key for r in contents.records}) == 4
    assert h.exit() == FLB_OK
    assert "6000 records sent (6000 in 12 aggregates)" in h.log()


def test_concurrent_flushes_like_workers_and_fixed_key(kinesis, host):
    stream = kinesis.create_stream(shards=4)
    h = host()
    assert h.init(0, **base_options(kinesis, stream, aggregation="true")) == FLB_OK
    assert h.init(1, **base_options(kinesis, stream, aggregation="true", fixed_partition_key="one")) == FLB_OK
    batches = [pod_records(1500, f"w{j}", seed=j) for j in range(4)]
    fixed = pod_records(500, "f")
    jobs = [(0, "app", make_chunk(b)) for b in batches] + [(1, "app", make_chunk(fixed))]
    assert h.flush_concurrently(jobs) == [FLB_OK] * 5
    contents = kinesis.read_all(stream)
    assert contents.dropped_aggregates == 0
    assert_all_once([r for b in batches for r in b] + fixed, contents)
    assert {r.partition_key for r in contents.records if json.loads(r.data)["log"][0] == "f"} == {"one"}
    assert contents.kinesis_records <= 4 * 4 + 1


def test_stream_arn_and_aggregate_size_limit(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    arn = kinesis.client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    h = host()
    options = base_options(kinesis, stream, aggregation="true", partition_key="kubernetes->pod_name",
                           aggregation_maximum_record_size="10000")
    del options["stream"]
    options["stream_arn"] = arn
    assert h.init(**options) == FLB_OK
    records = pod_records(2000, "lim")
    assert h.flush(make_chunk(records)) == FLB_OK
    contents = kinesis.read_all(stream)
    assert contents.dropped_aggregates == 0
    assert_all_once(records, contents, key_of=pod_key)
    sizes = [len(r["Data"]) + len(r["PartitionKey"]) for r in raw_records(kinesis, stream)]
    assert max(sizes) <= 10000 and max(sizes) > 9000  # full aggregates, never over the limit
    assert contents.kinesis_records < len(records) / 20


def raw_records(kinesis, stream):
    client, out = kinesis.client, []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out.extend(client.get_records(ShardIterator=iterator, Limit=10000)["Records"])
    return out


def test_reshard_without_partition_key_drops_nothing(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    h = host()
    assert h.init(**base_options(kinesis, stream, aggregation="true")) == FLB_OK
    records = pod_records(4000, "rs")
    assert h.flush(make_chunk(records[:2000])) == FLB_OK
    kinesis.client.update_shard_count(StreamName=stream, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert h.flush(make_chunk(records[2000:3000])) == FLB_OK
    assert h.flush(make_chunk(records[3000:])) == FLB_OK
    contents = kinesis.read_all(stream)
    # every sub-record of an aggregate shares one key hashing into its shard,
    # and the aggregate is routed by that hash: a split cannot separate them
    assert contents.dropped_aggregates == 0
    assert_all_once(records, contents)
    assert contents.kinesis_records < len(records) / 50
    open_ids = {s["ShardId"] for s in kinesis.client.list_shards(StreamName=stream)["Shards"]
                if "EndingSequenceNumber" not in s["SequenceNumberRange"]}
    assert len(open_ids) == 4
    last = [r for r in contents.records if json.loads(r.data)["log"].startswith("rs-00035")]
    assert {r.shard_id for r in last} <= open_ids
    # the stale map was noticed and refreshed; nothing needed sending twice
    [warning] = [line for line in h.log().splitlines() if "landed on another shard" in line]
    assert warning.endswith(", 0 records sent again")


def test_reshard_with_partition_keys_resends_what_a_kcl_would_drop(kinesis, host):
    """With a stale shard map the first aggregates after a split land on a child
    shard holding only part of their keys. The plugin sees the other ShardId in
    the PutRecords answer, refreshes the map and sends those records again
    (as the KPL does), so a KCL consumer still gets every record exactly once."""
    stream = kinesis.create_stream(shards=4)
    h = host(env={"FLB_LOG_LEVEL": "debug"})
    assert h.init(**base_options(kinesis, stream, aggregation="true",
                                 partition_key="kubernetes->pod_name")) == FLB_OK
    before, during, after = pod_records(2000, "b"), pod_records(2000, "d", seed=2), pod_records(2000, "a", seed=3)
    assert h.flush(make_chunk(before)) == FLB_OK
    first = kinesis.read_all(stream)
    assert first.dropped_aggregates == 0
    assert_all_once(before, first, key_of=pod_key)

    kinesis.client.update_shard_count(StreamName=stream, TargetShardCount=8, ScalingType="UNIFORM_SCALING")
    assert h.flush(make_chunk(during)) == FLB_OK
    assert h.flush(make_chunk(after)) == FLB_OK
    contents = kinesis.read_all(stream)
    # moto (unlike Kinesis) moves a split shard's records into its children,
    # which breaks the "before" aggregates in its copy: judge only new records
    new = [r for r in contents.records if json.loads(r.data)["log"][0] in "da"]
    new_dropped = [r for r in contents.dropped if json.loads(r.data)["log"][0] in "da"]
    contents.records = new
    assert_all_once(during + after, contents, key_of=pod_key)
    [warning] = [line for line in h.log().splitlines() if "landed on another shard" in line]
    misrouted = int(re.search(r"\] (\d+) aggregates landed", warning).group(1))
    assert 1 <= misrouted <= 4
    assert 0 < len(new_dropped) and all(json.loads(r.data)["log"][0] == "d" for r in new_dropped)
    assert len(new_dropped) <= len(during)  # only the stale-map round; none after the refresh


def test_without_shard_map_records_go_unaggregated(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    kinesis.front.faults.list_shards_down = True
    h = host()
    assert h.init(**base_options(kinesis, stream, aggregation="true")) == FLB_OK
    records = pod_records(50, "nomap")
    assert h.flush(make_chunk(records)) == FLB_OK
    assert "ListShards failed" in h.log()
    assert h.log().count("aggregation is on but cannot be used: ListShards failed") == 1
    kinesis.front.faults.list_shards_down = False
    contents = kinesis.read_all(stream)
    assert_all_once(records, contents)
    assert contents.aggregates == 0 and contents.kinesis_records == 50


def test_skip_aggregation_record_size_sends_large_records_alone(kinesis, host):
    stream = kinesis.create_stream(shards=2)
    h = host()
    assert h.init(**base_options(kinesis, stream, aggregation="true", partition_key="kubernetes->pod_name",
                                 skip_aggregation_record_size="1000")) == FLB_OK
    records = pod_records(300, "s")
    for r in records[::10]:
        r["pad"] = "p" * 1500
    assert h.flush(make_chunk(records)) == FLB_OK
    contents = kinesis.read_all(stream)
    assert contents.dropped_aggregates == 0
    assert_all_once(records, contents, key_of=pod_key)
    alone = {json.loads(r.data)["log"] for r in contents.records if not r.aggregated}
    assert alone == {r["log"] for r in records[::10]}


def test_retried_chunk_resends_only_unacknowledged_aggregates(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, aggregation="true", max_retries=1, backoff_increment="1ms",
                                 aggregation_maximum_record_size="4096", max_records_per_request=5)) == FLB_OK
    records = pod_records(1000, "led")
    chunk = make_chunk(records)
    kinesis.front.faults.script = [None] + ["throttle"] * 40  # 1st request through, then none
    assert h.flush(chunk) == FLB_RETRY
    assert kinesis.front.counters.put_records_calls > 2
    kinesis.front.faults.script = []
    assert h.flush(chunk) == FLB_OK
    contents = kinesis.read_all(stream)
    assert contents.dropped_aggregates == 0
    assert_all_once(records, contents)  # the 5 aggregates acknowledged first are not sent twice
    assert contents.aggregates > 20


# ---- compression ---------------------------------------------------------------

@pytest.mark.parametrize("aggregation", ["true", "false"])
@pytest.mark.parametrize("codec", ["zlib", "gzip", "zstd"])
def test_compression_round_trip(kinesis, host, codec, aggregation):
    stream = kinesis.create_stream(shards=2)
    h = host()
    assert h.init(**base_options(kinesis, stream, compression=codec, aggregation=aggregation,
                                 partition_key="kubernetes->pod_name")) == FLB_OK
    records = pod_records(400, codec)
    assert h.flush(make_chunk(records)) == FLB_OK
    contents = kinesis.read_all(stream)
    assert contents.dropped_aggregates == 0
    assert_all_once(records, contents, codec=codec, key_of=pod_key)
    assert all(r.aggregated == (aggregation == "true") for r in contents.records)
    magic = {"zlib": b"\x78", "gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}[codec]
    assert all(r.data.startswith(magic) for r in contents.records)  # each user record compressed


# ---- simple_aggregation --------------------------------------------------------

@pytest.mark.parametrize("codec", ["none", "zlib"])
def test_simple_aggregation_packs_newline_delimited_records(kinesis, host, codec):
    stream = kinesis.create_stream(shards=2)
    h = host()
    assert h.init(**base_options(kinesis, stream, simple_aggregation="true", compression=codec,
                                 partition_key="kubernetes->pod_name",
                                 aggregation_maximum_record_size="50000")) == FLB_OK
    records = pod_records(3000, "simple")
    assert h.flush(make_chunk(records)) == FLB_OK
    packs = raw_records(kinesis, stream)
    lines = []
    for pack in packs:
        text = decompress(codec, pack["Data"])
        assert text.endswith(b"\n") and len(pack["Data"]) + len(pack["PartitionKey"]) <= 50000
        got = [json.loads(line) for line in text.split(b"\n")[:-1]]
        assert pack["PartitionKey"] == pod_key(got[0])  # routed by the first record's key
        lines.extend(got)
    assert sorted(lines, key=lambda r: r["n"]) == records  # each once, intact
    assert len(packs) < len(records) / 50


# ---- options -------------------------------------------------------------------

@pytest.mark.parametrize("options,expected", [
    ({"aggregation": "true", "simple_aggregation": "true"},
     "options 'aggregation' and 'simple_aggregation': set one of them, not both"),
    ({"aggregation_maximum_record_size": "100"},
     "option 'aggregation_maximum_record_size': '100' is not valid; allowed: a whole number from 1024 to"),
    ({"skip_aggregation_record_size": "0"},
     "option 'skip_aggregation_record_size': '0' is not valid"),
    ({"simple_aggregation": "sometimes"}, "option 'simple_aggregation': 'sometimes' is not a boolean"),
])
def test_invalid_aggregation_options_fail_init_with_one_line(kinesis, host, options, expected):
    h = host()
    assert h.init(**base_options(kinesis, "s", **options)) == FLB_ERROR
    errors = [line for line in h.log().splitlines() if "[error]" in line]
    assert len(errors) == 1 and expected in errors[0], h.log()
