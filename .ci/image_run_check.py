"""Runs the image against moto on 127.0.0.1 (--network host): records sent to
its forward port arrive in the stream exactly once; it runs as non-root; the
plugin's metrics are on Fluent Bit's metrics endpoint; `docker stop` loses
nothing that was acknowledged; no error line, no plugin log line twice.

    .venv/bin/python .ci/image_run_check.py IMAGE [COMMAND...]

moto_server, boto3, msgpack (and zstandard with COMPRESSION=zstd) come from
this Python's venv: the project's .venv has them. Ports: MOTO_PORT (45671),
HTTP_PORT (2020), and the image's forward port 24224. RECORDS (1000). Prints
a JSON report and "RUN CHECK PASSED", or "RUN CHECK FAILED" with the end of
the container's log (exit 1).
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import msgpack

IMAGE = sys.argv[1]
MOTO_PORT = int(os.environ.get("MOTO_PORT", "45671"))
FORWARD_PORT = 24224  # the image's forward input (docker/fluent-bit.conf)
HTTP_PORT = int(os.environ.get("HTTP_PORT", "2020"))
N = int(os.environ.get("RECORDS", "1000"))
bindir = os.path.dirname(sys.executable)

moto = subprocess.Popen([os.path.join(bindir, "moto_server"), "-H", "127.0.0.1", "-p", str(MOTO_PORT)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
name = f"fbk-run-check-{os.getpid()}"
try:
    endpoint = f"http://127.0.0.1:{MOTO_PORT}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None):
                break
            time.sleep(0.1)
    kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint,
                           aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    kinesis.create_stream(StreamName="image-check", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="image-check")

    t0 = time.time()
    subprocess.run(["docker", "run", "-d", "--name", name, "--network", "host",
                    "-e", "AWS_REGION=us-east-1", "-e", "KINESIS_STREAM=image-check",
                    "-e", f"KINESIS_ENDPOINT={endpoint}", "-e", "KINESIS_PARTITION_KEY=id",
                    "-e", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "-e", "AWS_SECRET_ACCESS_KEY=secret",
                    "-e", "FLB_HTTP_SERVER=On", "-e", f"FLB_HTTP_PORT={HTTP_PORT}",
                    *(["-e", "KINESIS_COMPRESSION=" + os.environ["COMPRESSION"]] if os.environ.get("COMPRESSION") else []),
                    IMAGE, *sys.argv[2:]], check=True, stdout=subprocess.DEVNULL)

    def logs():
        return subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout + \
            subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr

    ready = None
    for _ in range(300):
        if "ready:" in logs():
            ready = time.time() - t0
            break
        time.sleep(0.05)
    assert ready is not None, logs()
    uid = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True).stdout.strip()
    top = subprocess.run(["docker", "top", name], capture_output=True, text=True).stdout

    # forward protocol, Forward mode with chunk option: the ack says Fluent Bit has it
    sent = 0
    with socket.create_connection(("127.0.0.1", FORWARD_PORT), timeout=10) as s:
        for batch in range(N // 100):
            entries = [[int(time.time()), {"id": f"r{batch * 100 + i}", "log": f"line {batch * 100 + i}"}]
                       for i in range(100)]
            chunk = f"c{batch}"
            s.sendall(msgpack.packb(["app.test", entries, {"chunk": chunk}]))
            unpacker = msgpack.Unpacker(raw=False)
            while True:
                unpacker.feed(s.recv(4096))
                ack = next(iter(unpacker), None)
                if ack is not None:
                    assert ack == {"ack": chunk}, ack
                    break
            sent += len(entries)

    def read_all():
        ids = []
        for shard in kinesis.list_shards(StreamName="image-check")["Shards"]:
            it = kinesis.get_shard_iterator(StreamName="image-check", ShardId=shard["ShardId"],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                out = kinesis.get_records(ShardIterator=it, Limit=10000)
                data = [r["Data"] for r in out["Records"]]
                if os.environ.get("COMPRESSION") == "zstd":
                    import zstandard
                    data = [zstandard.ZstdDecompressor().decompress(d) for d in data]
                ids.extend(json.loads(d)["id"] for d in data)
                it = out.get("NextShardIterator") if out["Records"] else None
        return ids

    ids = []
    for _ in range(100):
        ids = read_all()
        if len(ids) >= sent:
            break
        time.sleep(0.2)
    time.sleep(3)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/api/v2/metrics/prometheus", timeout=5).read().decode()
    sent_metric = [line for line in metrics.splitlines() if line.startswith("fluentbit_kinesis_records_sent_total")]

    # docker stop after more acknowledged records: nothing acknowledged may be lost
    with socket.create_connection(("127.0.0.1", FORWARD_PORT), timeout=10) as s:
        entries = [[int(time.time()), {"id": f"late{i}", "log": "x"}] for i in range(500)]
        s.sendall(msgpack.packb(["app.test", entries, {"chunk": "late"}]))
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            unpacker.feed(s.recv(4096))
            ack = next(iter(unpacker), None)
            if ack is not None:
                break
    t_stop = time.time()
    subprocess.run(["docker", "stop", name], check=True, stdout=subprocess.DEVNULL)
    stop_s = time.time() - t_stop
    ids_after = read_all()
    out = logs()
    plugin_lines = [line for line in out.splitlines() if "[kinesis" in line or "kinesis." in line]
    dup_lines = len(plugin_lines) - len(set(plugin_lines))
    report = {
        "image": IMAGE, "ready_s": round(ready, 2), "uid": uid, "process_users": sorted({l.split()[0] for l in top.splitlines()[1:] if l.strip()}),
        "sent": sent, "arrived": len(ids), "unique": len(set(ids)),
        "after_stop_expected": sent + 500, "after_stop_arrived": len(ids_after), "after_stop_unique": len(set(ids_after)),
        "stop_s": round(stop_s, 1), "metric": sent_metric, "plugin_log_lines": len(plugin_lines),
        "duplicate_log_lines": dup_lines, "errors": [line for line in out.splitlines() if "[error]" in line][:5],
    }
    print(json.dumps(report, indent=1))
    ok = (uid != "0" and len(ids) == sent == len(set(ids)) and len(ids_after) == sent + 500 == len(set(ids_after))
          and sent_metric and sent_metric[0].endswith(f" {sent}") and not report["errors"] and dup_lines == 0)
    if not ok:
        print(out[-3000:])
    print("RUN CHECK", "PASSED" if ok else "FAILED")
    sys.exit(0 if ok else 1)
finally:
    subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    moto.terminate()
    moto.wait()
