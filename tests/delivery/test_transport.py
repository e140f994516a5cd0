"""delivery/transport.py, the keep-alive HTTP/1.1 client of the Kinesis calls,
against real servers on 127.0.0.1 that answer well, badly or not at all
(tests/support/raw_http.py), and through KinesisClient for the error codes."""
import threading
import time

import pytest

from fluentbit_kinesis.config import Settings
from fluentbit_kinesis.delivery import connection as connection_module, transport as transport_module
from fluentbit_kinesis.delivery.client import KinesisClient, RequestError
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from fluentbit_kinesis.delivery.transport import Transport, TransportError
from tests.support.raw_http import answer_with, keep_alive

ONE_ENTRY = EntryTable.from_entries([(b"x", "k", None, 0)])
HEADERS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords",
           "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDPLANTED/..., Signature=PlantedSignature"}


def echo(body):
    return answer_with(b'{"echo":"' + body + b'"}')


def test_requests_share_one_kept_alive_connection_and_carry_our_head(serve):
    server = serve(keep_alive(echo))
    transport = Transport(server.url() + "/", 5.0)
    for i in range(5):
        response = transport.post(b"body-%d" % i, HEADERS)
        assert (response.status, response.data) == (200, b'{"echo":"body-%d"}' % i)
    assert server.connections == 1
    head, body = server.requests[0]
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST / HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Content-Length: 6" in lines and b"X-Amz-Target: Kinesis_20131202.PutRecords" in lines
    assert body == b"body-0"


def test_an_error_status_is_an_answer_not_an_exception(serve):
    server = serve(keep_alive(lambda body: answer_with(b'{"__type":"X"}', b"400 Bad Request")))
    response = Transport(server.url(), 5.0).post(b"{}", HEADERS)
    assert (response.status, response.data) == (400, b'{"__type":"X"}')


def test_chunked_answer_with_extensions_and_trailers(serve):
    def chunked(body):
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4;name=value\r\n{\"a\"\r\n" b"A\r\n:\"0123456\"\r\n" b"1\r\n}\r\n" b"0\r\nX-Trailer: t\r\n\r\n")
    server = serve(keep_alive(chunked))
    transport = Transport(server.url(), 5.0)
    assert transport.post(b"{}", HEADERS).data == b'{"a":"0123456"}'
    assert transport.post(b"{}", HEADERS).data == b'{"a":"0123456"}'
    assert server.connections == 1  # the connection stayed usable


def test_interim_answers_are_skipped_and_no_content_has_no_body(serve):
    server = serve(keep_alive(lambda body: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
    transport = Transport(server.url(), 5.0)
    assert (transport.post(b"{}", HEADERS).status, transport.post(b"{}", HEADERS).data) == (204, b"")
    assert server.connections == 1


def test_a_server_that_closes_after_each_answer(serve):
    def close_after_one(connection, server):
        connection.request()
        connection.send(answer_with(b"{}", extra=b"Connection: close\r\n"))
    server = serve(close_after_one)
    transport = Transport(server.url(), 5.0)
    for _ in range(3):
        assert transport.post(b"{}", HEADERS).status == 200
    assert server.connections == 3 and not transport.idle


def test_http_1_0_answer_read_to_its_close(serve):
    def old_server(connection, server):
        connection.request()
        connection.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 100_000)
    server = serve(old_server)
    transport = Transport(server.url(), 5.0)
    assert transport.post(b"{}", HEADERS).data == b"x" * 100_000
    assert transport.post(b"{}", HEADERS).data == b"x" * 100_000
    assert server.connections == 2


def test_a_server_that_closes_idle_connections_fails_no_request(serve):
    def close_when_idle(connection, server):
        connection.request()
        connection.send(answer_with(b"{}"))  # says nothing of closing, then closes 50 ms later
        time.sleep(0.05)
    server = serve(close_when_idle)
    transport = Transport(server.url(), 5.0)
    for _ in range(4):
        assert transport.post(b"{}", HEADERS).status == 200
        time.sleep(0.2)
    assert server.connections == 4 and len(server.requests) == 4


def test_connections_idle_too_long_are_not_reused(serve, monkeypatch):
    server = serve(keep_alive(echo))
    transport = Transport(server.url(), 5.0)
    transport.post(b"a", HEADERS)
    monkeypatch.setattr(transport_module, "IDLE_SECONDS", 0.1)
    time.sleep(0.2)
    transport.post(b"b", HEADERS)
    assert server.connections == 2


def test_a_failed_request_is_never_sent_again(serve):
    def read_then_close(connection, server):
        connection.request()
    server = serve(read_then_close)
    transport = Transport(server.url(), 5.0)
    with pytest.raises(TransportError, match="without answering"):
        transport.post(b"{}", HEADERS)
    time.sleep(0.1)
    assert len(server.requests) == 1 and server.connections == 1


def test_several_threads_at_once(serve):
    server = serve(keep_alive(echo))
    transport = Transport(server.url(), 5.0)
    wrong = []

    def work(thread):
        for i in range(40):
            body = b"t%d-%d" % (thread, i)
            if transport.post(body, HEADERS).data != b'{"echo":"' + body + b'"}':
                wrong.append(body)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong and len(server.requests) == 320
    assert server.connections <= 8 and len(transport.idle) == server.connections


def test_idle_connections_are_capped_and_cleared(serve, monkeypatch):
    monkeypatch.setattr(transport_module, "MAX_IDLE", 2)
    server = serve(keep_alive(echo))
    transport = Transport(server.url(), 5.0)
    connections = [transport._connection() for _ in range(4)]
    for connection in connections:
        transport._give_back(connection)
    assert len(transport.idle) == 2 and [c.sock.fileno() for c in connections[2:]] == [-1, -1]
    transport.clear()
    assert not transport.idle and [c.sock.fileno() for c in connections] == [-1] * 4
    assert transport.post(b"again", HEADERS).status == 200


# ---- through KinesisClient: the error codes, and no secret in them ------------

SECRETS = {"access_key_id": "AKIDPLANTEDKEY", "secret_access_key": "PlantedSecretKey",
           "session_token": "PlantedSessionToken"}


def client_for(url, timeout=1):
    return KinesisClient(Settings(region="us-east-1", stream="s", endpoint=url,
                                  http_request_timeout=timeout, **SECRETS))


def failure(client):
    with pytest.raises(RequestError) as caught:
        client.put_records(ONE_ENTRY, [0])
    text = str(caught.value)
    assert not any(secret in text for secret in SECRETS.values()), text
    assert "Signature=" not in text and "Authorization" not in text, text
    return caught.value


def test_a_server_that_never_answers_is_a_timeout(serve):
    release = threading.Event()

    def never(connection, server):
        connection.request()
        release.wait(30)
    server = serve(never)
    started = time.monotonic()
    try:
        error = failure(client_for(server.url()))
    finally:
        release.set()
    assert error.code == "timeout" and error.retryable
    assert 0.9 < time.monotonic() - started < 5


def test_a_reset_and_a_refused_connection_are_network_errors(serve):
    server = serve(lambda connection, server: connection.request())
    assert failure(client_for(server.url())).code == "network"
    port = server.port
    server.close()
    assert failure(client_for(f"http://127.0.0.1:{port}")).code == "network"


def test_proxies_still_go_through_urllib3(monkeypatch):
    assert isinstance(client_for("http://127.0.0.1:9").pool, Transport)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert not isinstance(client_for("http://kinesis.example").pool, Transport)
    assert isinstance(client_for("http://127.0.0.1:9").pool, Transport)  # NO_PROXY: no proxy applies


@pytest.mark.parametrize("size", [0, connection_module.JOINED_BODY, connection_module.JOINED_BODY + 1, 3 << 20])
def test_a_body_of_any_size_arrives_whole_after_its_head(serve, size):
    server = serve(keep_alive(lambda body: answer_with(b'{"size":%d}' % len(body))))
    transport = Transport(server.url() + "/", 5.0)
    body = (bytes(range(256)) * (size // 256 + 1))[:size]
    for kind in (bytes, memoryview, bytearray):
        assert transport.post(kind(body), HEADERS).data == b'{"size":%d}' % size
    assert [got for _head, got in server.requests] == [body] * 3
    assert f"Content-Length: {size}".encode() in server.requests[0][0].split(b"\r\n")


def test_put_records_sends_the_body_the_reference_makes(serve):
    """The body is hashed and sent from the C code's buffer: what arrives is the
    reference's bytes, whole, for a request over JOINED_BODY."""
    from fluentbit_kinesis.pipeline.entry_kernels import body_at_reference
    table = EntryTable.from_entries([(bytes([i % 251]) * (900 + i), f"k{i}", None, i) for i in range(300)])
    records = b",".join([b'{"SequenceNumber":"1","ShardId":"shardId-000000000000"}'] * 300)
    server = serve(keep_alive(lambda body: answer_with(b'{"FailedRecordCount":0,"Records":[' + records + b"]}")))
    client = KinesisClient(Settings(region="us-east-1", stream="s", endpoint=server.url(),
                                    access_key_id="AKID", secret_access_key="secret"))
    assert client.put_records(table, range(299, -1, -1)).failed == 0
    expected = body_at_reference(client.stream_field, table, range(299, -1, -1))
    assert len(expected) > connection_module.JOINED_BODY and server.requests[0][1] == expected
