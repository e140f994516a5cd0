"""CPU of one PutRecords exchange: urllib3 (the client before issue 18's lean
transport, still the one behind a proxy) against delivery/transport.py.

    .venv/bin/python -m tests.bench.transport [--rounds 5] [--requests 100] [--entries 500] [--size 250]

A PutRecords body of `--entries` entries of `--size` bytes (base64 in JSON:
~170 KB for 500 of 250 B) with SigV4-sized headers is POSTed again and again to
tests/bench/cpu.py's sink, run in another process (its CPU is not counted),
which answers each with one acknowledgement per entry, over http and over
https (a self-signed certificate, trusted as AWS_CA_BUNDLE would be). CPU is
this thread's time.thread_time per request; each round runs both clients in
turn, so load on the shared machine falls on both alike; the median of the
rounds is reported.
"""
import argparse
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import orjson
import urllib3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fluentbit_kinesis.delivery.transport import Transport  # noqa: E402
from tests.bench.cpu import Sink  # noqa: E402
from tests.bench.versus_c import TlsServer, self_signed  # noqa: E402

HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "Kinesis_20131202.PutRecords",
    "X-Amz-Date": "20250101T000000Z",
    "X-Amz-Security-Token": "T" * 400,
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/kinesis/aws4_request, "
                     "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
                     "Signature=" + "0" * 64,
}


def serve(port, cert, key):
    """The sink's process: cpu.Sink on 127.0.0.1:port, over TLS when given a certificate."""
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = TlsServer(("127.0.0.1", port), Sink, context)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", port), Sink)
    server.serve_forever()


def clients(url, ca_bundle):
    timeout = 60.0
    tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_bundle} if ca_bundle else {}
    pool = urllib3.PoolManager(num_pools=4, maxsize=16, **tls)  # as client.py had it
    pool_timeout = urllib3.Timeout(connect=10.0, read=timeout)
    transport = Transport(url, timeout, ca_bundle)

    def with_urllib3(body):
        response = pool.urlopen("POST", url, body=body, headers=HEADERS, timeout=pool_timeout,
                                retries=False, redirect=False, preload_content=True)
        return response.status, response.data

    def with_transport(body):
        response = transport.post(body, HEADERS)
        return response.status, response.data
    return {"urllib3": with_urllib3, "transport": with_transport}


def measure(send, body, requests):
    status, data = send(body)  # connects, and checks the answer once
    assert status == 200 and data.count(b"SequenceNumber") == orjson.loads(body)["Records"].__len__(), status
    started = time.thread_time()
    for _ in range(requests):
        send(body)
    return (time.thread_time() - started) / requests * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--size", type=int, default=250)
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)  # port cert key ("" for http)
    args = parser.parse_args()
    if args.serve:
        return serve(int(args.serve[0]), args.serve[1], args.serve[2])
    records = [{"Data": "x" * (args.size * 4 // 3), "PartitionKey": f"pod-{i % 50}"} for i in range(args.entries)]
    body = orjson.dumps({"StreamName": "bench", "Records": records})
    print(f"# {len(body):,} B PutRecords body ({args.entries} entries of {args.size} B), "
          f"{args.requests} requests per round, median of {args.rounds} rounds")
    print("| scheme | client | CPU µs/request | per entry | rounds |")
    print("|---|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(tmp)
        for scheme, port in (("http", 18700 + os.getpid() % 100), ("https", 18800 + os.getpid() % 100)):
            tls = (str(cert), str(key)) if scheme == "https" else ("", "")
            sink = subprocess.Popen([sys.executable, "-m", "tests.bench.transport", "--serve", str(port), *tls],
                                    cwd=ROOT)
            try:
                time.sleep(1.5)
                sends = clients(f"{scheme}://127.0.0.1:{port}", str(cert) if scheme == "https" else None)
                figures = {name: [] for name in sends}
                for _ in range(args.rounds):
                    for name, send in sends.items():
                        figures[name].append(measure(send, body, args.requests))
                for name, runs in figures.items():
                    median = statistics.median(runs)
                    print(f"| {scheme} | {name} | {median:.0f} | {median / args.entries:.2f} | "
                          f"{' '.join(f'{r:.0f}' for r in runs)} |", flush=True)
            finally:
                sink.terminate()
                sink.wait()


if __name__ == "__main__":
    main()
