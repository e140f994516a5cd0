"""CPU per record of whole flushes into a stream of many shards (issue 18's
per-entry work: lanes, request bodies, answers, acknowledgements, metrics),
default settings (random partition keys), against a local sink that answers
at once.

    .venv/bin/python -m tests.bench.cpu_shards [--shards 256] [--tree DIR]

`--tree`: import the plugin from another checkout (built: its _fastjson),
so two builds can be compared in interleaved rounds. The sink (cpu_aggregation's)
runs in its own process; 3 passes over 40,000 container log lines in chunks
of 8,000 after a warm-up chunk, with STATE_DIRECTORY set (the ledger on disk),
µs of this process's CPU per record.
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
        print(round(_measure(port), 3))
    finally:
        sink.terminate()


def _measure(port):
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
    start = time.process_time()
    for _ in range(3):
        for chunk in chunks:
            assert instance.flush(chunk, "app") == 1
    return (time.process_time() - start) / (3 * len(records)) * 1e6


if __name__ == "__main__":
    main()
