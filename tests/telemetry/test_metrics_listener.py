"""The metrics listener (`metrics_port`) against hostile clients, through the
ABI test host: idle connections, slowloris headers, huge headers and scrapers
that hang up must neither stop flushes nor the page, nor take the host down."""
import socket
import struct
import time
from pathlib import Path

from fluentbit_kinesis.telemetry import listener
from tests.support.harness import base_options, make_chunk, numbered_records
from tests.telemetry.test_ops import free_port, sample, scrape

FLB_OK = 1
SIGPIPE_BIT = 1 << (13 - 1)  # SIGPIPE is signal 13


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_by_server(sock, within):
    """True once the server closed `sock` (EOF or reset) within `within` seconds."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            try:
                sock.send(b"x")  # slowloris: one more byte
            except OSError:
                return True
        except OSError:
            return True
    return False


def test_hostile_clients_do_not_stop_flushes_or_the_page(kinesis, host):
    stream = kinesis.create_stream()
    port = free_port()
    h = host()
    assert h.init(**base_options(kinesis, stream, metrics_port=port)) == FLB_OK

    idle = [connect(port) for _ in range(100)]  # more than the cap: the oldest make room
    slow = connect(port)
    slow.send(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
    huge = connect(port)
    huge.settimeout(10)
    answer = b""
    try:
        for _ in range(64):  # 1 MiB of header that never ends
            huge.sendall(b"X-Pad: " + b"a" * 16377 + b"\r\n")
    except OSError:
        pass  # the server answered and closed while we were still sending
    try:
        answer = huge.recv(200)
    except OSError:
        pass
    assert answer.startswith(b"HTTP/1.1 431") or answer == b""  # refused, never buffered

    records = numbered_records(200)
    for i in range(0, 200, 20):
        assert h.flush(make_chunk(records[i:i + 20])) == FLB_OK
    assert sample(scrape(port), "fluentbit_kinesis_records_sent_total", instance="kinesis.0") == 200
    assert closed_by_server(slow, within=listener.REQUEST_SECONDS + 10)
    for sock in idle + [slow, huge]:
        sock.close()
    assert len(kinesis.read_all(stream).data) == 200
    assert h.exit() == FLB_OK


def test_scrapers_that_hang_up_do_not_kill_the_host(kinesis, host):
    stream = kinesis.create_stream()
    port = free_port()
    h = host()
    assert h.init(**base_options(kinesis, stream, metrics_port=port)) == FLB_OK
    for _ in range(50):
        sock = connect(port)
        sock.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST before the answer is read
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
    assert sample(scrape(port), "fluentbit_kinesis_records_sent_total", instance="kinesis.0") == 5
    assert h.exit() == FLB_OK
    assert h.proc.poll() is None


def test_plugin_threads_block_sigpipe(kinesis, host):
    """Threads the plugin starts (here: the listener, the summary line, the
    hand-off queue) inherit the shim's mask: a peer that hangs up gives EPIPE."""
    stream = kinesis.create_stream()
    h = host(env={"FLB_HOST_ENGINE_THREAD": "1"})
    assert h.init(**base_options(kinesis, stream, metrics_port=free_port(), metrics_log_interval="60")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK  # starts the hand-off thread
    tasks = [t for t in Path(f"/proc/{h.proc.pid}/task").iterdir() if int(t.name) != h.proc.pid]
    assert len(tasks) >= 3
    for task in tasks:
        status = dict(line.split(":\t", 1) for line in (task / "status").read_text().splitlines() if ":\t" in line)
        assert int(status["SigBlk"], 16) & SIGPIPE_BIT, f"thread {task.name} does not block SIGPIPE"
    assert h.exit() == FLB_OK


def test_request_rules(kinesis, host):
    port = free_port()
    served = listener.Listener("127.0.0.1", port, lambda: (b"x 1\n", "text/plain"))
    try:
        def ask(raw):
            with connect(port) as sock:
                sock.sendall(raw)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                return data

        assert ask(b"GET /metrics HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\nx 1\n")
        assert ask(b"HEAD /metrics HTTP/1.1\r\n\r\n").endswith(b"Connection: close\r\n\r\n")
        assert ask(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
        assert ask(b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
        assert ask(b"nonsense\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert ask(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431")
    finally:
        served.close()
