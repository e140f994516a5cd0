"""A small, bounded HTTP listener for the metrics page (`metrics_port`).

One thread serves every connection (non-blocking sockets, one selector), so
no client can use up threads. Each connection has MAX_REQUEST_BYTES to send
its request and REQUEST_SECONDS from accept to the last byte of the answer;
at most MAX_CONNECTIONS are open, and a new one replaces the oldest, so idle
or slow clients can neither hold the page hostage nor grow memory. One
request per connection; GET or HEAD of /metrics (or /) only. After the
answer the connection is half-closed and what the client still sends is read
and discarded until it closes (or its time is up): closing with unread input
would reset the connection and could destroy the answer before it is read.
"""
import selectors
import socket
import threading
import time

MAX_CONNECTIONS = 32
MAX_REQUEST_BYTES = 8192
REQUEST_SECONDS = 5.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 431: "Request Header Fields Too Large"}


class _Connection:
    __slots__ = ("sock", "deadline", "received", "out", "draining")

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.received = b""
        self.out = None  # the answer, once the request is complete
        self.draining = False  # answered: reading the rest until the client closes


class Listener:
    """Serves `render()` (bytes, content type) at /metrics on address:port."""

    def __init__(self, address, port, render, name="metrics"):
        self.render = render
        self.server = socket.create_server((address, port), backlog=64, reuse_port=False)
        self.server.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.server, selectors.EVENT_READ)
        self.connections = {}  # socket -> _Connection, oldest first
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopping = False
        self.thread = threading.Thread(target=self._serve, name=f"{name}-listener", daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server.getsockname()[1]

    def close(self):
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self.thread.join(10)
        for conn in list(self.connections.values()):
            self._drop(conn)
        self.selector.close()
        self.server.close()
        self._wake_r.close()
        self._wake_w.close()

    # ---- the loop -------------------------------------------------------------

    def _serve(self):
        while not self._stopping:
            timeout = None
            if self.connections:
                timeout = max(0.0, min(c.deadline for c in self.connections.values()) - time.monotonic())
            for key, mask in self.selector.select(timeout):
                sock = key.fileobj
                if sock is self.server:
                    self._accept()
                elif sock is self._wake_r:
                    return
                else:
                    conn = self.connections.get(sock)
                    if conn is not None:
                        self._on_ready(conn, mask)
            now = time.monotonic()
            for conn in [c for c in self.connections.values() if c.deadline <= now]:
                self._drop(conn)  # too slow: no answer owed to a client that never finished

    def _accept(self):
        for _ in range(64):  # a burst: bounded work per round
            try:
                sock, _ = self.server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. out of descriptors: the others still get served
            sock.setblocking(False)
            if len(self.connections) >= MAX_CONNECTIONS:
                self._drop(next(iter(self.connections.values())))  # the oldest makes room
            conn = _Connection(sock, time.monotonic() + REQUEST_SECONDS)
            self.connections[sock] = conn
            self.selector.register(sock, selectors.EVENT_READ)

    def _on_ready(self, conn, mask):
        try:
            if conn.draining:
                if not conn.sock.recv(65536):
                    self._drop(conn)
                return
            if conn.out is None and mask & selectors.EVENT_READ:
                data = conn.sock.recv(MAX_REQUEST_BYTES + 1 - len(conn.received))
                if not data:
                    self._drop(conn)
                    return
                conn.received += data
                self._maybe_answer(conn)
            if conn.out is not None:
                sent = conn.sock.send(conn.out, socket.MSG_NOSIGNAL)  # a client that left: EPIPE, no signal
                conn.out = conn.out[sent:]
                if not conn.out:
                    conn.sock.shutdown(socket.SHUT_WR)
                    conn.draining = True
                    self.selector.modify(conn.sock, selectors.EVENT_READ)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # reset, broken pipe: the client left
            self._drop(conn)

    def _maybe_answer(self, conn):
        head, found, _ = conn.received.partition(b"\r\n\r\n")
        if not found:
            if len(conn.received) > MAX_REQUEST_BYTES:
                self._answer(conn, 431, b"request too large\n")
            return
        if len(head) > MAX_REQUEST_BYTES:
            self._answer(conn, 431, b"request too large\n")
            return
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            self._answer(conn, 400, b"bad request\n")
        elif parts[0] not in (b"GET", b"HEAD"):
            self._answer(conn, 405, b"GET only\n")
        elif parts[1].split(b"?", 1)[0] not in (b"/metrics", b"/"):
            self._answer(conn, 404, b"try /metrics\n")
        else:
            body, content_type = self.render()
            self._answer(conn, 200, body, content_type, head_only=parts[0] == b"HEAD")

    def _answer(self, conn, status, body, content_type="text/plain; charset=utf-8", head_only=False):
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        conn.out = head if head_only else head + body
        conn.received = b""
        self.selector.modify(conn.sock, selectors.EVENT_WRITE)

    def _drop(self, conn):
        self.connections.pop(conn.sock, None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
