"""delivery/transport.py against broken and hostile servers (each failure a
clear error, memory bounded, the connection dropped) and over TLS (a
self-signed certificate trusted through AWS_CA_BUNDLE; a wrong name or an
untrusted certificate refused)."""
import ssl
import threading
import time
import tracemalloc

import pytest

from fluentbit_kinesis.config import Settings
from fluentbit_kinesis.delivery.client import KinesisClient, RequestError
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.delivery.connection import MAX_BODY
from fluentbit_kinesis.delivery.transport import Transport, TransportError
from tests.support.raw_http import answer_with, keep_alive, self_signed, server_context

ONE_ENTRY = EntryTable.from_entries([(b"x", "k", None, 0)])
HEADERS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords"}
MiB = 1024 * 1024


def answering(data, then_close=True):
    """A handler that reads one request and writes `data` (then closes)."""
    def answer(connection, server):
        connection.request()
        connection.send(data)
        if not then_close:
            threading.Event().wait(10)
    return answer


def streaming(head, piece):
    """A handler that writes `head` and then `piece` until the client goes away."""
    def answer(connection, server):
        connection.request()
        connection.send(head)
        while True:
            connection.send(piece)
    return answer


def peak_while(call):
    """(exception raised by call, peak bytes Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as caught:
            call()
        return caught.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("head, piece, message, bound", [
    (b"HTTP/1.1 200 OK\r\n", b"X-Header: " + b"a" * 1000 + b"\r\n", "headers over 65536 bytes", MiB),
    (b"HTTP/1.1 200 OK\r\n", b"a" * 4096, "headers over 65536 bytes", MiB),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"10000\r\n" + b"a" * 0x10000 + b"\r\n",
     f"body over {MAX_BODY} bytes", MAX_BODY + 8 * MiB),
    (b"HTTP/1.0 200 OK\r\n\r\n", b"a" * 65536, f"body over {MAX_BODY} bytes", MAX_BODY + 8 * MiB),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", b"a" * 4096, "chunk size line over 4096 bytes",
     MiB),
], ids=["endless headers", "endless status line", "endless chunks", "endless body to close", "endless chunk line"])
def test_endless_answers_end_in_a_clear_error_with_bounded_memory(serve, head, piece, message, bound):
    server = serve(streaming(head, piece))
    transport = Transport(server.url(), 10.0)
    error, peak = peak_while(lambda: transport.post(b"{}", HEADERS))
    assert isinstance(error, TransportError) and message in str(error), error
    assert peak < bound, peak
    assert not transport.idle


def test_a_declared_huge_body_is_refused_before_allocating(serve):
    server = serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n", then_close=False))
    error, peak = peak_while(lambda: Transport(server.url(), 10.0).post(b"{}", HEADERS))
    assert f"body over {MAX_BODY} bytes" in str(error) and peak < MiB


@pytest.mark.parametrize("data, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 500, "before the answer was complete"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", "before the answer was complete"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", "before the answer was complete"),
    (b"HTTP/1.1 200 OK\r\nContent-", "before the answer was complete"),
    (b"", "without answering"),
    (b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
    (b"ICY 200 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 20 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\n folded: value\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported transfer encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", "malformed chunk"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", "over 100 headers"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_truncated_and_malformed_answers_are_errors_and_drop_the_connection(serve, data, message):
    server = serve(answering(data))
    transport = Transport(server.url(), 10.0)
    with pytest.raises(TransportError, match=message):
        transport.post(b"{}", HEADERS)
    assert not transport.idle


def test_bytes_after_the_answer_keep_the_connection_from_reuse(serve):
    server = serve(keep_alive(lambda body: answer_with(b"{}") + b"HTTP/1.1 200 OK\r\n"))
    transport = Transport(server.url(), 10.0)
    assert transport.post(b"{}", HEADERS).data == b"{}"
    assert transport.post(b"{}", HEADERS).data == b"{}"
    assert server.connections == 2


def test_a_header_with_a_line_break_is_never_written_nor_quoted(serve):
    server = serve(keep_alive(lambda body: answer_with(b"{}")))
    transport = Transport(server.url(), 10.0)
    for value in ("token\r\nX-Injected: 1", "token\nX", "token\rX", "t\u20ac"):
        with pytest.raises(TransportError) as caught:
            transport.post(b"{}", {**HEADERS, "X-Amz-Security-Token": value})
        assert "token" not in str(caught.value) and "\u20ac" not in str(caught.value)
    time.sleep(0.1)
    assert server.requests == []


# ---- TLS ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


def test_tls_with_a_certificate_trusted_through_aws_ca_bundle(serve, certificate, monkeypatch):
    server = serve(keep_alive(lambda body: answer_with(b'{"FailedRecordCount":0,"Records":[{"SequenceNumber":'
                                                       b'"1","ShardId":"shardId-000000000000"}]}')),
                   server_context(*certificate))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate[0]))
    client = KinesisClient(Settings(region="us-east-1", stream="s", endpoint=server.url("https"),
                                    access_key_id="AKID", secret_access_key="secret"))
    for _ in range(3):
        assert client.put_records(ONE_ENTRY, [0]).failed == 0
    assert server.connections == 1
    assert f"Host: 127.0.0.1:{server.port}".encode() in server.requests[0][0].split(b"\r\n")


def test_tls_carries_a_large_body_whole(serve, certificate):
    body = bytes(range(256)) * 8192  # 2 MiB: head and body in sends of their own
    server = serve(keep_alive(lambda got: answer_with(b'{"size":%d}' % len(got))), server_context(*certificate))
    transport = Transport(server.url("https"), 5.0, cafile=str(certificate[0]))
    assert transport.post(memoryview(body), {"X-Amz-Target": "t"}).data == b'{"size":%d}' % len(body)
    assert server.requests[0][1] == body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_tls_reads_a_large_answer_whole(serve, certificate, chunked):
    """An answer of many TLS records (a PutRecords answer of 500 entries is
    ~50 KB) read into its buffer by the ssl object's own read."""
    data = bytes(range(256)) * 1024  # 256 KiB
    def answer(body):
        if not chunked:
            return answer_with(data)
        pieces = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 70000]), data[i:i + 70000])
                          for i in range(0, len(data), 70000))
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + pieces + b"0\r\n\r\n"
    server = serve(keep_alive(answer), server_context(*certificate))
    transport = Transport(server.url("https"), 5.0, cafile=str(certificate[0]))
    for _ in range(2):
        assert transport.post(b"{}", HEADERS).data == data
    assert server.connections == 1


def test_tls_connections_closed_by_the_server_while_idle_fail_no_request(serve, certificate):
    def close_when_idle(connection, server):
        connection.request()
        connection.send(answer_with(b"{}"))
        time.sleep(0.05)
        connection.sock.unwrap()  # close_notify, then the TCP close
    server = serve(close_when_idle, server_context(*certificate))
    transport = Transport(server.url("https"), 10.0, str(certificate[0]))
    for _ in range(3):
        assert transport.post(b"{}", HEADERS).status == 200
        time.sleep(0.2)
    assert server.connections == 3


@pytest.mark.parametrize("close_notify", [False, True], ids=["ragged close", "close_notify"])
@pytest.mark.parametrize("data, expected", [
    (b"HTTP/1.0 200 OK\r\n\r\nall of it", b"all of it"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 500, "before the answer was complete"),
    (b"HTTP/1.1 200 OK\r\nContent-", "before the answer was complete"),
    (b"", "without answering"),
], ids=["read to the close", "short body", "short head", "no answer"])
def test_tls_answers_ended_by_a_close_read_as_over_plain_http(serve, certificate, data, expected, close_notify):
    """The TLS reads skip ssl.py's layers: a close, with or without TLS's
    close_notify, still ends an answer or makes the same clear error."""
    def answer(connection, server):
        connection.request()
        connection.send(data)
        if close_notify:
            connection.sock.unwrap()
    server = serve(answer, server_context(*certificate))
    transport = Transport(server.url("https"), 10.0, str(certificate[0]))
    if isinstance(expected, bytes):
        assert transport.post(b"{}", HEADERS).data == expected
    else:
        with pytest.raises(TransportError, match=expected):
            transport.post(b"{}", HEADERS)
    assert not transport.idle


@pytest.mark.parametrize("host, trusted, message", [
    ("localhost", True, "Hostname mismatch"),
    ("127.0.0.1", False, "certificate verify failed"),
])
def test_tls_refuses_a_wrong_name_or_an_untrusted_certificate(serve, certificate, host, trusted, message,
                                                              monkeypatch):
    server = serve(keep_alive(lambda body: answer_with(b"{}")), server_context(*certificate))
    transport = Transport(server.url("https", host), 10.0, str(certificate[0]) if trusted else None)
    with pytest.raises(ssl.SSLCertVerificationError, match=message):
        transport.post(b"{}", HEADERS)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    if trusted:
        monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate[0]))
    client = KinesisClient(Settings(region="us-east-1", stream="s", endpoint=server.url("https", host),
                                    access_key_id="AKID", secret_access_key="secret"))
    with pytest.raises(RequestError) as caught:
        client.put_records(ONE_ENTRY, [0])
    assert caught.value.code == "network" and message in caught.value.message
    assert server.requests == []
