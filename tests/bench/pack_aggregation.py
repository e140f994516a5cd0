"""CPU per record of KPL aggregation's pack alone: the native way
(pipeline/kpl_native.py, csrc/fastjson_kpl*.c) against the Python reference
(Aggregator._pack_python), on the same shaped entries, interleaved.

    .venv/bin/python -m tests.bench.pack_aggregation [--rounds 15] [--records 8000]

Entries: tests.bench.cost.container_logs shaped by the fast path (~250 B
each), with partition_key kubernetes.pod_name (50 keys) and without (every
record keyless); shard maps of 4 and 256 even shards. time.thread_time of
each call, best of the rounds.
"""
import argparse
import time

from fluentbit_kinesis import config
from fluentbit_kinesis.delivery.shards import ShardMap
from fluentbit_kinesis.pipeline import kpl_native
from fluentbit_kinesis.pipeline.aggregation import Aggregator
from fluentbit_kinesis.pipeline.shaping import Shaper
from tests.bench.cost import container_logs
from tests.support.harness import make_chunk


class _Quiet:
    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


def _listed(count):
    span = 2 ** 128 // count
    return [{"ShardId": f"shardId-{i:012d}",
             "HashKeyRange": {"StartingHashKey": str(i * span),
                              "EndingHashKey": str((i + 1) * span - 1 if i < count - 1 else 2 ** 128 - 1)}}
            for i in range(count)]


def _best(call, rounds):
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        call()
        best = min(best, time.thread_time() - started)
    return best


def measure(partition_key, shards, records, rounds):
    settings = config.Settings(partition_key=partition_key, aggregation=True)
    shard_map = ShardMap(lambda: _listed(shards), _Quiet())
    agg = Aggregator(settings, shard_map, _Quiet())
    shaped = Shaper(settings).shape_chunk(make_chunk(container_logs(records))).entries
    assert shard_map.maybe_refresh()
    keyless = [(shard, agg._keyless_key(shard)) for shard in shard_map.shards()]

    def native():
        assert kpl_native.pack(shaped, keyless, shard_map.route, 0, agg.limit, agg.skip) is not None

    def python():
        agg._pack_python(shaped, keyless)
    native()
    python()  # warm: routes cached, as in a running plugin
    times = {"native": float("inf"), "python": float("inf")}
    for _ in range(rounds):  # interleaved, so load on the machine falls on both
        times["native"] = min(times["native"], _best(native, 1))
        times["python"] = min(times["python"], _best(python, 1))
    size = sum(len(entry[0]) for entry in shaped) / len(shaped)
    return {name: seconds / len(shaped) * 1e6 for name, seconds in times.items()}, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--records", type=int, default=8000)
    args = parser.parse_args()
    if not kpl_native.AVAILABLE:
        raise SystemExit("fluentbit_kinesis._fastjson is not built (make)")
    print("| partition_key | shards | bytes/record | Python µs/record | native µs/record | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for partition_key in (["kubernetes", "pod_name"], None):
        for shards in (4, 256):
            times, size = measure(partition_key, shards, args.records, args.rounds)
            name = ".".join(partition_key) if partition_key else "none (keyless)"
            print(f"| {name} | {shards} | {size:.0f} | {times['python']:.3f} | {times['native']:.3f} "
                  f"| {times['python'] / times['native']:.2f}x |")


if __name__ == "__main__":
    main()
