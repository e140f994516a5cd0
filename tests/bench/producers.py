"""Producers for tests/bench/throughput.py: bin/kinesis.so in the ABI test
host, or a real Fluent Bit tailing a file; one process per producer, each
signing with its own access key id (the front tells them apart by it)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.cpu import chunks_of  # noqa: E402
from tests.support.harness import FAKE_CREDENTIALS, PLUGIN, Host  # noqa: E402

IDLE_AT_END = 5.0  # seconds without a record stored: the backlog is through


def with_host(settings, backlogs, workers, front, tmp):
    """Flushes every producer's backlog in ~2 MB chunks back to back: on the
    engine thread as Fluent Bit's default `workers 0` does (the hand-off
    delivers them in the background), or `workers` at a time."""
    hosts, threads, errors = [], [], []
    for name, records in backlogs.items():
        folder = Path(tmp) / name
        folder.mkdir()
        env = {"AWS_ACCESS_KEY_ID": name, "STATE_DIRECTORY": str(folder / "state")}  # this run's own
        if workers == 1:
            env["FLB_HOST_ENGINE_THREAD"] = "1"
        host = Host(folder, env=env)
        for key, value in settings.items():
            host.configure(0, **{key: value})
        assert host.init(0) == 1, host.log()
        paths = [host.write_chunk(chunk) for chunk in chunks_of(records)]
        hosts.append(host)
        threads.append(threading.Thread(target=_flush_all, args=(host, paths, workers, errors)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if workers == 1:
        _wait_until_idle(front, [])
    for host in hosts:
        host.exit(0)
        host.close()
    assert not errors, errors


def _flush_all(host, paths, workers, errors):
    for start in range(0, len(paths), workers):
        batch = paths[start:start + workers]
        answer = host.command("pflush " + " ".join(f"0 kube.var.log {path}" for path in batch), timeout=900)
        while workers == 1 and answer == "pflush 2":  # the hand-off queue is full: offered again, as Fluent Bit does
            time.sleep(1.0)
            answer = host.command(f"pflush 0 kube.var.log {batch[0]}", timeout=900)
        if answer != "pflush" + " 1" * len(batch):
            errors.append(answer)


def with_fluent_bit(binary, settings, backlogs, workers, front, tmp):
    """One Fluent Bit per producer tailing its backlog (JSON lines); stopped
    (SIGTERM) once nothing has been stored for IDLE_AT_END seconds."""
    tmp = Path(tmp)
    (tmp / "plugins.conf").write_text(f"[PLUGINS]\n    Path {PLUGIN}\n")
    (tmp / "parsers.conf").write_text("[PARSER]\n    Name json\n    Format json\n")
    processes = []
    for name, records in backlogs.items():
        log_file = tmp / f"{name}.log"
        with open(log_file, "w") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
        output = "".join(f"    {key} {value}\n" for key, value in settings.items())
        if workers > 1:
            output += f"    workers {workers}\n"
        config = tmp / f"{name}.conf"
        config.write_text(
            "[SERVICE]\n    flush 1\n    grace 30\n    log_level info\n    plugins_file plugins.conf\n"
            "    parsers_file parsers.conf\n"
            f"[INPUT]\n    name tail\n    path {log_file}\n    read_from_head true\n    parser json\n"
            "    buffer_max_size 1M\n"
            f"[OUTPUT]\n    name kinesis\n    match *\n    retry_limit no_limits\n{output}")
        env = dict(os.environ, **dict(FAKE_CREDENTIALS, AWS_ACCESS_KEY_ID=name, STATE_DIRECTORY=str(tmp / name)))
        log = open(tmp / f"{name}.fluent-bit.log", "wb")
        processes.append((subprocess.Popen([binary, "-c", str(config)], cwd=tmp, env=env,
                                           stdout=log, stderr=subprocess.STDOUT), log))
    _wait_until_idle(front, processes)
    for process, log in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
    for name in backlogs:
        lines = (tmp / f"{name}.fluent-bit.log").read_text(errors="replace").splitlines()
        for line in lines:
            if "write limit" in line or "error" in line.lower():
                print(f"<!-- {name}: {line[:300]} -->")


def _wait_until_idle(front, processes):
    started = time.monotonic()
    while True:
        time.sleep(1.0)
        for process, _ in processes:
            assert process.poll() is None, f"fluent-bit exited with {process.returncode}"
        last = max(front.last_stored.values(), default=started)
        if time.monotonic() - last > IDLE_AT_END and front.last_stored:
            return
        assert time.monotonic() - started < 1800, "no end after 30 minutes"
