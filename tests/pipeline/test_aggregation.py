"""Aggregation (KPL, shard aware), simple_aggregation and compression,
driven through the ABI test host against moto; streams are read back with
the KCL's rule (an aggregate with a sub-record outside its shard is dropped)."""
import base64
import collections
import hashlib
import json
import random
import re
import threading

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from fluentbit_kinesis.pipeline.aggregation import MAGIC, encode
from fluentbit_kinesis.pipeline.compression import decompress
from tests.support.harness import base_options, make_chunk
from tests.support.kinesalite import kinesalite  # noqa: F401 (a fixture)
from tests.support.streams import messages_pb2

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

@pytest.mark.parametrize("hash_key", [None, str(2 ** 128 - 2)], ids=["no_hash_key", "hash_key"])
def test_encoder_matches_protobuf_and_aws_kinesis_agg_decodes_it(hash_key):
    rng = random.Random(3)
    keys = ["pod-1", "é" * 256, "k"]
    records = [(rng.randrange(3), rng.randbytes(rng.choice([0, 1, 127, 128, 300, 16384, 70000])))
               for _ in range(60)]
    blob = encode(keys, records, hash_key)
    assert blob.startswith(MAGIC)
    body = blob[len(MAGIC):-16]
    assert hashlib.md5(body).digest() == blob[-16:]
    expected = messages_pb2.AggregatedRecord()
    expected.partition_key_table.extend(keys)
    if hash_key:
        expected.explicit_hash_key_table.append(hash_key)
    for index, data in records:
        sub = expected.records.add()
        sub.partition_key_index, sub.data = index, data
        if hash_key:
            sub.explicit_hash_key_index = 0  # set, so HasField: what the KCL checks
    assert body == expected.SerializeToString()  # byte for byte, as protobuf itself writes it
    parsed = messages_pb2.AggregatedRecord.FromString(body)
    assert all(sub.HasField("explicit_hash_key_index") == bool(hash_key) for sub in parsed.records)

    boto3_style = {"Data": blob, "PartitionKey": "a", "SequenceNumber": "1",
                   "ApproximateArrivalTimestamp": 0}
    users = list(iter_deaggregate_records([boto3_style], data_format="Boto3"))
    # it hands user records back base64 encoded, as a Lambda event carries them
    assert [(u["kinesis"]["partitionKey"], base64.b64decode(u["kinesis"]["data"])) for u in users] == \
        [(keys[i], d) for i, d in records]
    assert {u["kinesis"].get("explicitHashKey") for u in users} == {hash_key}


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
    if not keyed:  # one random key per shard (the explicit hash key routes them)
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
    sizes = flushed_record_sizes(h, kinesis, stream, records)
    assert max(sizes) <= 10000 and max(sizes) > 9000  # full aggregates, never over the limit
    assert len(sizes) < len(records) / 20


def test_default_aggregates_are_a_fraction_of_a_shard_second(kinesis, host):
    """Without aggregation_maximum_record_size, aggregates hold at most five PUT
    payload units (125 KiB): a shard's 1 MiB/s takes eight, so pacing fills its
    byte budget and shares it finely (issue 17)."""
    stream = kinesis.create_stream(shards=1)
    h = host()
    assert h.init(**base_options(kinesis, stream, aggregation="true", partition_key="kubernetes->pod_name")) == FLB_OK
    sizes = flushed_record_sizes(h, kinesis, stream, pod_records(8000, "units"))
    assert max(sizes) <= 5 * 25 * 1024 and sorted(sizes)[-2] > 4 * 25 * 1024, sizes
    assert len(sizes) >= 8


def flushed_record_sizes(h, kinesis, stream, records):
    """Flushes `records` (keyed by pod), checks they all arrived once with no
    aggregate dropped, and returns the sizes (data and key) of the Kinesis records."""
    assert h.flush(make_chunk(records)) == FLB_OK
    contents = kinesis.read_all(stream)
    assert contents.dropped_aggregates == 0
    assert_all_once(records, contents, key_of=pod_key)
    return [len(r["Data"]) + len(r["PartitionKey"]) for r in raw_records(kinesis, stream)]


def raw_records(kinesis, stream):
    client, out = kinesis.client, []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out.extend(client.get_records(ShardIterator=iterator, Limit=10000)["Records"])
    return out


def _open_shards(client, stream):
    return sorted((s for s in client.list_shards(StreamName=stream)["Shards"]
                   if "EndingSequenceNumber" not in s["SequenceNumberRange"]),
                  key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))


def _split_one(client, stream):
    shard = _open_shards(client, stream)[0]
    low, high = (int(shard["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    client.split_shard(StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str((low + high) // 2))


def _merge_last_two(client, stream):
    *_, left, right = _open_shards(client, stream)
    client.merge_shards(StreamName=stream, ShardToMerge=left["ShardId"], AdjacentShardToMerge=right["ShardId"])


def _update_shard_count(client, stream, target, wait):
    """UpdateShardCount; on an emulator without it (kinesalite), the same
    through SplitShard and MergeShards: halve every shard, or merge pairs."""
    try:
        client.update_shard_count(StreamName=stream, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
        return
    except client.exceptions.ClientError as exc:
        if "UnknownOperation" not in str(exc):
            raise
    while len(_open_shards(client, stream)) < target:
        for shard in _open_shards(client, stream):
            low, high = (int(shard["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
            client.split_shard(StreamName=stream, ShardToSplit=shard["ShardId"],
                               NewStartingHashKey=str((low + high) // 2 + 1))
            wait()
    while len(_open_shards(client, stream)) > target:
        _merge_last_two(client, stream)
        wait()


@pytest.fixture(params=["moto", "kinesalite"])
def backend(request):
    return request.getfixturevalue("kinesis" if request.param == "moto" else "kinesalite")


@pytest.mark.parametrize("keyed", [True, False], ids=["partition_key", "no_key"])
def test_reshards_under_load_drop_nothing_and_duplicate_nothing(backend, host, keyed):
    """Split, merge, then UpdateShardCount 4 -> 8 -> 4 while chunks are being
    flushed (the plugin's shard map goes stale after each). Every sub-record
    carries its aggregate's explicit hash key, so the KCL's shard check passes
    wherever an aggregate lands: nothing is dropped, nothing is sent twice."""
    stream = backend.create_stream(shards=4)
    client = backend.client
    wait = getattr(backend, "wait_active", lambda _stream: None)
    h = host()
    options = dict(aggregation="true")
    if keyed:
        options["partition_key"] = "kubernetes->pod_name"
    assert h.init(**base_options(backend, stream, **options)) == FLB_OK
    chunks = [pod_records(400, f"c{i:02d}", seed=i) for i in range(50)]  # 20,000 records
    answers, flushed = [], threading.Semaphore(0)

    def flush_all():
        for records in chunks:
            answers.append(h.flush(make_chunk(records)))
            flushed.release()

    flusher = threading.Thread(target=flush_all)
    flusher.start()
    reshards = [lambda: _split_one(client, stream), lambda: _merge_last_two(client, stream),
                lambda: _update_shard_count(client, stream, 8, lambda: wait(stream)),
                lambda: _update_shard_count(client, stream, 4, lambda: wait(stream))]
    for reshard in reshards:
        for _ in range(8):  # a few chunks between reshards; the next flush is in flight now
            flushed.acquire()
        reshard()
        wait(stream)
    flusher.join()
    assert answers == [FLB_OK] * len(chunks)
    assert len(_open_shards(client, stream)) == 4

    contents = backend.read_all(stream)
    records = [r for c in chunks for r in c]
    assert contents.dropped_aggregates == 0  # what a KCL consumer gets: all of it
    assert_all_once(records, contents, key_of=pod_key if keyed else None)
    contents.records = contents.everything  # what any other consumer gets: no copy twice
    assert_all_once(records, contents)
    assert contents.aggregates >= len(chunks) and contents.kinesis_records < len(records) / 20
    log = h.log()
    stale = sum(int(n) for n in re.findall(r"(\d+) aggregates landed on another shard than predicted", log))
    name = "kinesalite" if type(backend).__name__ == "Kinesalite" else "moto"
    print(f"\nreshards under load ({name}, {'keyed' if keyed else 'no key'}): "
          f"{len(records)} records in {contents.aggregates} aggregates, {stale} landed off the predicted "
          f"shard, {contents.dropped_aggregates} dropped by the KCL rule, "
          f"{len(contents.records) - len(records)} duplicated")
    assert stale > 0  # the stale maps were met
    assert "sent again" not in log
    if keyed:  # a key's records keep their order within each shard
        seen = collections.defaultdict(list)
        for r in contents.records:
            record = json.loads(r.data)
            seen[(r.shard_id, r.partition_key)].append((record["log"][:3], record["n"]))
        assert all(got == sorted(got) for got in seen.values())


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
    kinesis.front.faults.script = [None] + ["5xx"] * 40  # 1st request through, then none
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
