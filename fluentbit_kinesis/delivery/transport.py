"""A lean keep-alive HTTP/1.1 client for the Kinesis calls: POSTs to one
endpoint, used whenever no proxy applies (urllib3 speaks to proxies).

urllib3 spent ~0.9 ms of CPU on a 170 KB PutRecords request where a socket
spends ~0.2 ms. This does only what those calls need: a request's head, then
one send of head and body and its answer read (connection.py, each size
capped); up to 16 idle connections, checked before reuse. A request is never sent
twice: a failure once it may have reached the server is the caller's to retry.
"""
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from .connection import Connection, TransportError
from .sigv4 import host_header

MAX_IDLE = 16
IDLE_SECONDS = 50.0  # load balancers drop idle connections after 60 s


class Transport:
    """POSTs to one http(s) endpoint over kept-alive connections; safe to share
    between threads: each request has a connection to itself."""

    def __init__(self, endpoint_url, timeout, cafile=None):
        url = urlsplit(endpoint_url)
        tls = url.scheme == "https"
        self.host = url.hostname or ""
        self.port = url.port or (443 if tls else 80)
        self.path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self.host_header = host_header(endpoint_url)  # as it is signed
        self.connect_timeout = min(timeout, 10.0)
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cafile) if tls else None
        self.lock = threading.Lock()
        self.idle = []  # Connection, the most recently used last

    def post(self, body, headers):
        """Sends `body` with `headers` (not Host nor Content-Length: ours to add);
        a Response, or OSError (TimeoutError for timeouts) or TransportError."""
        head = self._head(body, headers)
        connection = self._connection()
        try:
            connection.send(head, body)
            response, reusable = connection.response()
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._give_back(connection)
        else:
            connection.close()
        return response

    def clear(self):
        """Closes the idle connections (those in use close when they are done
        if the pool is full, or stay for the next request)."""
        with self.lock:
            idle, self.idle = self.idle, []
        for connection in idle:
            connection.close()

    def _head(self, body, headers):
        """Our request line, `headers` as they are (never Host nor
        Content-Length: those two are ours), Host and Content-Length."""
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        text = f"POST {self.path} HTTP/1.1\r\n{fields}Host: {self.host_header}\r\nContent-Length: {len(body)}\r\n\r\n"
        breaks = len(headers) + 4  # a line each, and the blank one
        if text.count("\n") != breaks or text.count("\r") != breaks:
            raise TransportError("a request header holds a line break")
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            raise TransportError("a request header is not Latin-1 text") from None

    def _connection(self):
        while True:
            with self.lock:
                connection = self.idle.pop() if self.idle else None
            if connection is None:
                return self._open()
            if time.monotonic() - connection.used < IDLE_SECONDS and not connection.dropped():
                return connection
            connection.close()  # the server may have closed it, or soon will

    def _open(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            raise
        return Connection(sock)

    def _give_back(self, connection):
        connection.used = time.monotonic()
        with self.lock:
            if len(self.idle) < MAX_IDLE:
                self.idle.append(connection)
                return
        connection.close()


