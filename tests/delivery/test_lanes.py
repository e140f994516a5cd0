"""batching.Lanes with every key's shard predicted at once (ShardMap.shard_ids,
the plugin's way) against one entry at a time (shard_of_entry): the same
lanes, in the same order, with the same sizes, whatever the keys."""
import random

from fluentbit_kinesis.delivery.batching import Lanes, entry_size
from fluentbit_kinesis.delivery.shards import ShardMap
from fluentbit_kinesis.pipeline.keys import RandomKey
from fluentbit_kinesis.telemetry.log import Logger

SPACE = 2 ** 128


def shard_map(shards):
    """A map of `shards` even ranges; 0: ListShards fails (no map: "unknown")."""
    span = SPACE // max(1, shards)

    def list_shards():
        if not shards:
            raise OSError("no stream")
        return [{"ShardId": f"shardId-{i:012d}", "HashKeyRange": {
            "StartingHashKey": str(i * span), "EndingHashKey": str(SPACE - 1 if i == shards - 1 else (i + 1) * span - 1)}}
            for i in range(shards)]
    return ShardMap(list_shards, Logger(lambda level, text: None, "t", 0))


def random_entries(rng, count):
    pool = [RandomKey(f"{rng.getrandbits(64):016x}") for _ in range(50)] + \
        ["pod-a", "pod-é", "", "k" * 256, "\U0001F600", "a\x00b", RandomKey("pod-a")]
    entries = []
    for index in range(count):
        explicit = str(rng.randrange(SPACE)) if rng.random() < 0.1 else None
        entries.append((rng.randbytes(rng.randrange(0, 400)), rng.choice(pool), explicit, index))
    return entries


def lanes_as_lists(lanes):
    return [(shard, list(entries), list(sizes)) for shard, (entries, sizes) in lanes.lanes.items()]


def test_shards_predicted_at_once_give_the_same_lanes():
    rng = random.Random(18)
    for shards in (0, 1, 2, 7, 256, 1024):
        for round_ in range(4):
            entries = random_entries(rng, rng.randrange(1, 3000))
            if round_ % 2:  # plain records only
                entries = [(data, key, None, index) for data, key, _, index in entries]
            one_by_one = Lanes(entries, shard_map(shards).shard_of_entry)
            at_once_map = shard_map(shards)
            at_once = Lanes(entries, at_once_map.shard_of_entry, at_once_map.shard_ids)
            assert lanes_as_lists(at_once) == lanes_as_lists(one_by_one)
            assert at_once.shards == one_by_one.shards and len(at_once) == len(entries)
            for shard, lane, sizes in lanes_as_lists(at_once):  # each lane: its entries in order
                assert [e[3] for e in lane] == sorted(e[3] for e in lane)
                assert sizes == [entry_size(e) for e in lane]
                assert all(at_once_map.shard_of_entry(e) == shard for e in lane)


def test_shard_ids_answer_as_shard_of_entry():
    rng = random.Random(3)
    for shards in (0, 3, 256):
        keys = [e[1] for e in random_entries(rng, 500)]
        fresh, cached = shard_map(shards), shard_map(shards)
        cached.shard_ids(keys[:100])  # some known already, some not
        expected = [fresh.shard_of_entry((b"", key, None)) for key in keys]
        assert cached.shard_ids(keys) == expected
        assert shard_map(shards).shard_ids([]) == []
