"""KPL aggregation in C (pipeline/kpl_native.py, csrc/fastjson_kpl*.c)
against the Python reference (Aggregator._pack_python): the same entries,
byte for byte and in the same order (data, partition key, explicit hash key,
events with their type and shard id), and the same turn for keyless records,
on the fuzz corpus's chunks shaped by the fast path and on seeded random
chunks: random keys, keyless records, keys over 127 and 16383 bytes, records
around skip and limit, empty data, hundreds of keys in one aggregate, gaps
in the shard map, a key hashing to a shard's EndingHashKey, 1 to 256 shards,
under several limit and skip mixes."""
import hashlib
import random

import pytest

from fluentbit_kinesis import config
from fluentbit_kinesis.delivery.shards import ShardMap, hash_of_key
from fluentbit_kinesis.pipeline import kpl_native
from fluentbit_kinesis.pipeline.aggregation import MAGIC, AggregateEvents, Aggregator, PACED_AGGREGATE_BYTES
from fluentbit_kinesis.pipeline.keys import RandomKey
from tests.support import differential

pytestmark = pytest.mark.skipif(not kpl_native.AVAILABLE, reason="fluentbit_kinesis._fastjson not built (make)")

MIB = 1024 * 1024
FILES = sorted(p for p in differential.CORPUS.iterdir() if p.is_file())
# (aggregation_maximum_record_size or None: the default, skip_aggregation_record_size)
MIXES = [(None, 20 * 1024), (1024, 20 * 1024), (5000, 300), (MIB, MIB), (MIB, 1), (300, 100), (40, 10)]
SHARD_COUNTS = (1, 4, 256)


class QuietLog:
    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


def listed_shards(count, gaps=(), ends=()):
    """A ListShards answer of `count` even shards, less those in `gaps`;
    `ends`: hashes made EndingHashKeys (each splits the shard holding it)."""
    bounds = sorted({i * (2 ** 128 // count) for i in range(count)} | {end + 1 for end in ends})
    shards = []
    for i, start in enumerate(bounds):
        end = bounds[i + 1] - 1 if i + 1 < len(bounds) else 2 ** 128 - 1
        if i not in gaps:
            shards.append({"ShardId": f"shardId-{i:012d}",
                           "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)}})
    return shards


def aggregator(mix, listed, route_listed=None):
    limit, skip = mix
    explicit = frozenset() if limit is None else frozenset({"aggregation_maximum_record_size"})
    settings = config.Settings(aggregation=True, aggregation_maximum_record_size=limit or MIB,
                               skip_aggregation_record_size=skip, explicitly_set=explicit)
    shard_map = ShardMap(lambda: listed, QuietLog())
    agg = Aggregator(settings, shard_map, QuietLog())
    assert shard_map.maybe_refresh()
    if route_listed is not None:  # the map was read again between shards() and route()
        agg.shards = ShardMap(lambda: route_listed, QuietLog())
        assert agg.shards.maybe_refresh()
    return agg, [(shard, agg._keyless_key(shard)) for shard in shard_map.shards()]


def same_entries(agg, keyless, shaped):
    """Both ways over the same entries and turn: identical answers."""
    turn = agg._turn
    native = kpl_native.pack(shaped, keyless, agg.shards.route, turn, agg.limit, agg.skip)
    reference = agg._pack_python(shaped, keyless)
    assert native is not None, "the native pack declined"
    entries, keyless_taken = native
    assert keyless_taken == agg._turn - turn
    assert len(entries) == len(reference)
    for got, expected in zip(entries, reference):
        assert type(got[0]) is bytes and got[:3] == expected[:3]
        assert type(got[3]) is type(expected[3]) and got[3] == expected[3]
        if type(expected[3]) is AggregateEvents:
            assert got[3].shard_id == expected[3].shard_id
            assert got[0].startswith(MAGIC) and hashlib.md5(got[0][4:-16]).digest() == got[0][-16:]
    return entries


def test_corpus_chunks_shaped_by_the_fast_path():
    aggregates = 0
    maps = [listed_shards(count) for count in SHARD_COUNTS] + [listed_shards(8, gaps={2, 5})]
    for path in FILES:
        options, data = differential.split(path.read_bytes())
        for variant in [options] + [(options & 0xC0) | low for low in range(0, 64, 7)]:
            shaper = differential.shaper_for(differential.settings_for(variant))
            shaped = shaper.shape_chunk(data).entries
            if not shaped:
                continue
            for mix, listed in zip(MIXES, maps * 2):
                agg, keyless = aggregator(mix, listed)
                entries = same_entries(agg, keyless, shaped)
                aggregates += sum(type(e[3]) is AggregateEvents for e in entries)
    assert aggregates > 2 * len(FILES)


KEY_POOL = ["pod-1", "pod-2", "é" * 90, "k" * 127, "k" * 128, "x" * 200, "日本" * 40, "y" * 16383,
            "z" * 16384, "w" * 20000, "🙂", "a"]


def random_chunk(rng, count, mix):
    limit, skip = mix
    limit = limit or PACED_AGGREGATE_BYTES
    keys = KEY_POOL + [f"key-{i}" for i in range(rng.choice((3, 50, 400)))]
    randoms = [RandomKey(rng.randbytes(8).hex()) for _ in range(rng.choice((1, 7, 300)))]
    share_keyless = rng.choice((0.0, 0.3, 1.0))
    sizes = [0, 1, 127, 128, 300, skip - 1, skip, skip + 1, limit - 60, limit - 40, limit, 16383, 16384]
    shaped = []
    for event in range(count):
        key = rng.choice(randoms) if rng.random() < share_keyless else rng.choice(keys)
        size = rng.choice(sizes) if rng.random() < 0.2 else rng.randrange(0, 600)
        shaped.append((rng.randbytes(max(0, min(size, 70000))), key, event * 3 + 1))
    return shaped


def random_streams(rng):
    """(aggregator, its keyless keys, records a chunk, mix) for each mix, over a
    random shard map (gaps, keys that hash to a shard's end), at a random turn."""
    for mix in MIXES:
        count = rng.choice((1, 2, 40, 700))
        shards = rng.choice(SHARD_COUNTS + (3, 16))
        gaps = set(rng.sample(range(shards), k=shards // 3)) if rng.random() < 0.3 else set()
        ends = [hash_of_key(key) for key in rng.sample(KEY_POOL, 3)] if rng.random() < 0.5 else []
        listed = listed_shards(shards, gaps, ends)
        if not listed:
            continue
        agg, keyless = aggregator(mix, listed)
        agg._turn = rng.randrange(1000)
        yield agg, keyless, count, mix


@pytest.mark.parametrize("seed", range(12))
def test_random_chunks(seed):
    rng = random.Random(seed)
    for agg, keyless, count, mix in random_streams(rng):
        for _ in range(2):  # the turn carries on to the next chunk
            same_entries(agg, keyless, random_chunk(rng, count, mix))


def test_a_key_that_hashes_to_its_shards_end_gives_the_start():
    ends = [hash_of_key("pod-1"), hash_of_key("pod-2")]
    agg, keyless = aggregator((None, 20 * 1024), listed_shards(2, ends=ends))
    entries = same_entries(agg, keyless, [(b"x" * 10, key, i) for i, key in enumerate(["pod-1", "pod-2"] * 5)])
    starts = {str(shard.start) for shard in agg.shards.shards()}
    assert {entry[2] for entry in entries} <= starts


def test_many_keys_in_one_aggregate_and_key_indices_over_16383():
    """Key indices need two and three varint bytes; one shard, room for all."""
    agg, keyless = aggregator((MIB, MIB), listed_shards(1))
    shaped = [(b"" if i % 3 else b"d", f"k{i}", i) for i in range(17000)]
    entries = same_entries(agg, keyless, shaped)
    assert len(entries) == 1 and len(entries[0][3]) == 17000


def test_keyless_records_spread_over_the_shards_in_turn():
    agg, keyless = aggregator((None, 20 * 1024), listed_shards(256))
    agg._turn = 250
    shaped = [(b"r" * 50, RandomKey(f"{i:016x}"), i) for i in range(1000)]
    entries = same_entries(agg, keyless, shaped)
    assert agg._turn == 1250
    assert len({e[3].shard_id for e in entries if type(e[3]) is AggregateEvents}) == 256


def test_routes_to_a_map_newer_than_the_keyless_shards():
    """route() answered from a map read after shards(): other shard ids."""
    agg, keyless = aggregator((None, 20 * 1024), listed_shards(4), route_listed=listed_shards(8, gaps={3}))
    rng = random.Random(5)
    shaped = [(rng.randbytes(rng.randrange(200)), rng.choice(KEY_POOL[:3] + [RandomKey("r1")]), i)
              for i in range(500)]
    same_entries(agg, keyless, shaped)


def test_pack_takes_the_native_way_and_falls_back_on_what_it_declines(monkeypatch):
    agg, keyless = aggregator((None, 20 * 1024), listed_shards(4))
    shaped = [(b"x" * 100, f"pod-{i % 7}", i) for i in range(300)]
    assert kpl_native.pack(shaped, keyless, agg.shards.route, agg._turn, agg.limit, agg.skip) is not None
    packed = agg.pack(shaped)
    assert packed == agg._pack_python(shaped, keyless)
    odd = shaped + [(bytearray(b"not bytes"), "pod-1", 300), (b"y", 7, 301)]
    assert kpl_native.pack(odd, keyless, agg.shards.route, agg._turn, agg.limit, agg.skip) is None
    borrowed = shaped + [(b"z", keyless[0][1], 302)]  # a record's key is a keyless key
    assert kpl_native.pack(borrowed, keyless, agg.shards.route, agg._turn, agg.limit, agg.skip) is None
    monkeypatch.setattr(kpl_native, "AVAILABLE", False)
    assert agg.pack(shaped) == packed  # not built: the reference, same entries
