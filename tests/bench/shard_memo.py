"""ns per entry of shard prediction (entry_kernels_native.shard_indices, MD5
of each key then the shard bounds) with and without fj_shard_indices's
key -> hash memo, 256 shards, 8,000-entry tables: the made-up key pool (the
plain default) and 50 pod names (partition_key). Best of 5 passes over 5
tables, after one to fill the memo.

    .venv/bin/python -m tests.bench.shard_memo
"""
import random
import time

from fluentbit_kinesis.pipeline import entry_kernels, entry_kernels_native as native
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.pipeline.keys import RANDOM_KEY_POOL

TOP = 2 ** 128 - 1


def tables(key_of, count=6, size=8000):
    return [EntryTable.from_entries([(b"d" * 250, key_of(c * size + i), None, i) for i in range(size)])
            for c in range(count)]


def per_entry(tabs, bounds, memo_bytes):
    native.MEMO_BYTES = memo_bytes
    native._memos.__dict__.clear()
    native.shard_indices(tabs[0], bounds)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for table in tabs[1:]:
            native.shard_indices(table, bounds)
        best = min(best, time.perf_counter() - start)
    return best / sum(t.count for t in tabs[1:]) * 1e9


def main():
    rng = random.Random(1)
    cuts = sorted(rng.randrange(1, 2 ** 128) for _ in range(255))
    bounds = entry_kernels.ShardBounds([0] + cuts, [c - 1 for c in cuts] + [TOP])
    pool = [f"{rng.getrandbits(64):016x}" for _ in range(RANDOM_KEY_POOL)]
    pods = [f"myapp-{rng.getrandbits(40):010x}-x{i:04d}" for i in range(50)]
    kept = native.MEMO_BYTES
    for name, tabs in (("made-up key pool", tables(lambda i: pool[i % len(pool)])),
                       ("50 pod names", tables(lambda i: rng.choice(pods)))):
        print(f"{name}: no memo {per_entry(tabs, bounds, 0):.0f} ns/entry, "
              f"memo {per_entry(tabs, bounds, kept):.0f} ns/entry")
    native.MEMO_BYTES = kept


if __name__ == "__main__":
    main()
