"""CPU per record of whole flushes into a stream of many shards (issue 18's
per-entry work: lanes, request bodies, answers, acknowledgements, metrics),
default settings (random partition keys), against a local sink that answers
at once.

    .venv/bin/python -m tests.bench.cpu_shards [--shards 256] [--tree DIR] [--phases]

`--tree`: import the plugin from another checkout (built: its _fastjson),
so two builds can be compared in interleaved rounds. The sink (cpu_aggregation's)
runs in its own process; 3 passes over 40,000 container log lines in chunks
of 8,000 after a warm-up chunk, with STATE_DIRECTORY set (the ledger on disk),
µs of this process's CPU per record. `--phases`: also each phase's own
(`time.thread_time` around it; nested phases are indented, inside their parent's).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=256)
    parser.add_argument("--tree", default=None)
    parser.add_argument("--phases", action="store_true")
    parser.add_argument("--sink", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, os.path.abspath(args.tree))
    from tests.bench import cpu_aggregation as sink_module
    sink_module.SHARDS, sink_module.SPAN = args.shards, 2 ** 128 // args.shards
    if args.sink:
        from http.server import ThreadingHTTPServer
        ThreadingHTTPServer(("127.0.0.1", args.sink), sink_module._Sink).serve_forever()
    port = 20000 + os.getpid() % 1000
    sink = subprocess.Popen([sys.executable, "-m", "tests.bench.cpu_shards", "--shards", str(args.shards),
                             "--sink", str(port)])
    try:
        phases = _timed_phases() if args.phases else None
        print(round(_measure(port, phases), 3))
        for label, seconds in (phases or {}).items():
            print(f"{label:28s} {seconds / (3 * 40_000) * 1e6:6.2f}")
    finally:
        sink.terminate()


PHASES = (  # (module, class or None, function, label): a flush's phases, outermost first
    ("plugin", "OutputInstance", "flush", "flush"),
    ("pipeline.shaping", "Shaper", "shape_chunk", " shaping"),
    ("delivery.sender", "Delivery", "send", " delivery"),
    ("delivery.sender", "Delivery", "lanes", "  lanes: shards, grouping"),
    ("delivery.batching", "Lanes", "take", "  lanes: take (pacing)"),
    ("delivery.client", "KinesisClient", "put_records", "  put_records"),
    ("pipeline.entry_kernels_native", None, "body_view", "   body"),
    ("delivery.client", "KinesisClient", "_signed_headers", "   signing"),
    ("delivery.client", "KinesisClient", "_post", "   signing + HTTP"),
    ("delivery.acknowledgements", "Acknowledgements", "__call__", "  acknowledgements"),
)


def _timed_phases():
    """Wraps each phase in a CPU timer; {label: seconds}, filled as flushes run."""
    import importlib
    spent = {label: 0.0 for *_, label in PHASES}
    for module, owner, name, label in PHASES:
        where = importlib.import_module(f"fluentbit_kinesis.{module}")
        where = getattr(where, owner) if owner else where
        setattr(where, name, _timed(getattr(where, name), spent, label))
    return spent


def _timed(function, spent, label):
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - start
    return timed


def _measure(port, phases=None):
    import fluentbit_kinesis
    from fluentbit_kinesis.config import Settings
    from fluentbit_kinesis.plugin import OutputInstance, tune_garbage_collector
    from fluentbit_kinesis.telemetry.log import Logger
    from tests.bench.cost import container_logs
    from tests.support.harness import FAKE_CREDENTIALS, make_chunk
    print(f"# plugin from {os.path.dirname(fluentbit_kinesis.__file__)}", file=sys.stderr)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["STATE_DIRECTORY"] = tempfile.mkdtemp()
    time.sleep(1.0)  # the sink starts
    records = container_logs(40_000)
    chunks = [make_chunk(records[i:i + 8000]) for i in range(0, len(records), 8000)]
    settings = Settings(region="us-east-1", stream="s", endpoint=f"http://127.0.0.1:{port}")
    instance = OutputInstance(settings, Logger(lambda level, text: None, "cpu", 1))
    instance.flush(chunks[0], "warm")
    tune_garbage_collector()
    for label in phases or ():
        phases[label] = 0.0  # from here on
    start = time.process_time()
    for _ in range(3):
        for chunk in chunks:
            assert instance.flush(chunk, "app") == 1
    return (time.process_time() - start) / (3 * len(records)) * 1e6


if __name__ == "__main__":
    main()
