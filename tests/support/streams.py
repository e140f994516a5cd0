"""Reading a stream back: every shard from TRIM_HORIZON with GetRecords, then
KPL de-aggregation with the aws-kinesis-agg package's decoder, applying the
KCL's rule (AggregatorUtil.deaggregate): a sub-record's hash is its explicit
hash key when the Record has an explicit_hash_key_index, else the MD5 of its
partition key; an aggregate with any sub-record whose hash falls outside the
shard it landed on is dropped whole (and counted here as `dropped`).
`records` is what a KCL consumer gets; `everything` what a consumer without
the shard check gets (Lambda with aws-kinesis-agg, Firehose)."""
import hashlib
from dataclasses import dataclass, field

import aws_kinesis_agg
from aws_kinesis_agg import deaggregator  # sets up the path its generated protobuf module needs

messages_pb2 = deaggregator.messages_pb2

MAGIC = aws_kinesis_agg.MAGIC


@dataclass
class UserRecord:
    data: bytes
    partition_key: str
    shard_id: str
    explicit_hash_key: str = None
    aggregated: bool = False


@dataclass
class StreamContents:
    records: list = field(default_factory=list)
    kinesis_records: int = 0      # records as Kinesis stored them (aggregates count once)
    aggregates: int = 0
    dropped_aggregates: int = 0   # aggregates the KCL would drop
    dropped_records: int = 0      # user records inside them
    dropped: list = field(default_factory=list)  # those user records, for diagnosis

    @property
    def data(self):
        return [r.data for r in self.records]

    @property
    def everything(self):
        return self.records + self.dropped


def hash_of(partition_key, explicit_hash_key=None):
    if explicit_hash_key is not None:
        return int(explicit_hash_key)
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def decode_aggregate(data):
    """The AggregatedRecord of a KPL aggregate, or None when `data` is not one."""
    if len(data) <= len(MAGIC) + 16 or not data.startswith(MAGIC):
        return None
    message, digest = data[len(MAGIC):-16], data[-16:]
    if hashlib.md5(message).digest() != digest:
        return None
    record = messages_pb2.AggregatedRecord()
    record.ParseFromString(message)
    return record


def read_all(client, stream, deaggregate=True):
    contents = StreamContents()
    shards = []
    params = {"StreamName": stream}
    while True:
        answer = client.list_shards(**params)
        shards.extend(answer["Shards"])
        if not answer.get("NextToken"):
            break
        params = {"NextToken": answer["NextToken"]}
    for shard in shards:
        low = int(shard["HashKeyRange"]["StartingHashKey"])
        high = int(shard["HashKeyRange"]["EndingHashKey"])
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            answer = client.get_records(ShardIterator=iterator, Limit=10000)
            for record in answer["Records"]:
                contents.kinesis_records += 1
                add_record(contents, record, shard["ShardId"], low, high, deaggregate)
            iterator = answer.get("NextShardIterator")
            if not answer["Records"]:
                break
    return contents


def add_record(contents, record, shard_id, low, high, deaggregate=True):
    """Adds one stored Kinesis record ({"Data": bytes, "PartitionKey"}) of a shard with hash range low..high."""
    aggregate = decode_aggregate(record["Data"]) if deaggregate else None
    if aggregate is None:
        contents.records.append(UserRecord(record["Data"], record["PartitionKey"], shard_id))
        return
    contents.aggregates += 1
    keys = list(aggregate.partition_key_table)
    hash_keys = list(aggregate.explicit_hash_key_table)
    users = []
    for sub in aggregate.records:
        ehk = hash_keys[sub.explicit_hash_key_index] if sub.HasField("explicit_hash_key_index") else None
        key = keys[sub.partition_key_index]
        if not low <= hash_of(key, ehk) <= high:
            contents.dropped_aggregates += 1
            contents.dropped_records += len(aggregate.records)
            contents.dropped.extend(UserRecord(s.data, keys[s.partition_key_index], shard_id, None, True)
                                    for s in aggregate.records)
            return
        users.append(UserRecord(sub.data, key, shard_id, ehk, True))
    contents.records.extend(users)
