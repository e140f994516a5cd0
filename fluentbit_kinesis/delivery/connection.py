"""One kept-alive connection of transport.py: a request's head and body
sent, its answer read (a status line, a few headers, a body by
Content-Length, chunks or close), each size capped so a broken server cannot
make us allocate without bound. Over TLS the ssl module's C object is called
directly: its Python layers were about 30 calls a request."""
import re
import select
import ssl
import time

MAX_HEAD = 64 * 1024  # an answer's status line and headers
MAX_HEADERS = 100
MAX_LINE = 4096  # a chunk-size line or a trailer
MAX_BODY = 32 * 1024 * 1024
MAX_INTERIM = 8  # 1xx answers before the real one
JOINED_BODY = 16 * 1024  # a body up to this size goes in one send with its head
HEX = b"0123456789abcdefABCDEF"


class TransportError(Exception):
    """An answer that breaks HTTP/1.1 or our limits, or a request we cannot
    write; its connection is dropped. The text never quotes the request."""


class Response:
    """What client.py reads of an answer."""
    __slots__ = ("status", "data")

    def __init__(self, status, data):
        self.status = status
        self.data = data


class Connection:
    """A socket and the bytes read from it but not yet used."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray()
        self.used = time.monotonic()
        self.answered = False  # a byte of the current answer came
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)
        tls = getattr(sock, "_sslobj", None)
        if tls is None:
            self.sendall, self.recv, self.recv_into, self.pending = sock.sendall, sock.recv, sock.recv_into, None
        else:  # ssl.py's Python layers skipped (a request called them ~30 times): its C object's own
            self.sendall, self.recv, self.recv_into, self.pending = _tls_calls(tls)

    def send(self, head, body):
        """A request's head and body; a large body is sent as it is rather than
        copied behind its head (one more send costs less than the copy)."""
        if len(body) <= JOINED_BODY:
            self.sendall(head + body)
        else:
            self.sendall(head)
            self.sendall(body)

    def close(self):
        self.sock.close()

    def dropped(self):
        """True when the idle connection has something to read: the server's
        close, or bytes nobody asked for; either way it cannot carry a request."""
        return bool(self.pending and self.pending()) or bool(self.poller.poll(0))

    def response(self):
        """(Response, whether the connection can carry another request)."""
        self.answered = False
        for _ in range(MAX_INTERIM + 1):
            status, version, fields = _parse_head(self._take(self._find(b"\r\n\r\n", MAX_HEAD, "headers") + 4))
            if status == 101:
                raise TransportError("the server switched protocols")
            if status >= 200:
                break
        else:
            raise TransportError("too many interim (1xx) answers")
        tokens = [t.strip() for t in fields.get(b"connection", b"").lower().split(b",")]
        reusable = version == b"HTTP/1.1" and b"close" not in tokens
        if status in (204, 304):
            data = b""
        elif b"transfer-encoding" in fields:
            if fields[b"transfer-encoding"].strip() != b"chunked":
                raise TransportError("unsupported transfer encoding in the answer")
            data = self._chunked()
        elif b"content-length" in fields:
            data = self._exactly(_length(fields[b"content-length"].strip()))
        else:
            data, reusable = self._until_close(), False
        return Response(status, data), reusable and not self.buffer

    def _more(self):
        data = self.recv(65536)
        if not data:
            raise TransportError("the server closed the connection before the answer was complete"
                                 if self.answered else
                                 "the server closed the connection without answering")
        self.answered = True
        self.buffer += data

    def _find(self, pattern, limit, what):
        """Where `pattern` starts in the buffer, reading until it comes."""
        start = 0
        while True:
            at = self.buffer.find(pattern, start)
            if at > limit or (at < 0 and len(self.buffer) > limit):
                raise TransportError(f"answer {what} over {limit} bytes")
            if at >= 0:
                return at
            start = max(0, len(self.buffer) - len(pattern) + 1)
            self._more()

    def _take(self, count):
        with memoryview(self.buffer) as view:
            data = bytes(view[:count])
        del self.buffer[:count]
        return data

    def _exactly(self, count):
        have = len(self.buffer)
        if have >= count:
            return self._take(count)
        data = bytearray(count)
        data[:have] = self.buffer
        self.buffer.clear()
        with memoryview(data) as view:
            while have < count:
                got = self.recv_into(view[have:])
                if not got:
                    raise TransportError("the server closed the connection before the answer was complete")
                have += got
        return bytes(data)

    def _chunked(self):
        parts, total = [], 0
        while True:
            line = self._take(self._find(b"\r\n", MAX_LINE, "chunk size line") + 2)[:-2]
            size = line.split(b";", 1)[0].strip()
            if not size or len(size) > 8 or size.strip(HEX):
                raise TransportError("malformed chunk size in the answer")
            size = int(size, 16)
            if not size:
                break
            total += size
            if total > MAX_BODY:
                raise TransportError(f"answer body over {MAX_BODY} bytes")
            parts.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise TransportError("malformed chunk in the answer")
        for _ in range(MAX_HEADERS):  # trailers, ignored
            end = self._find(b"\r\n", MAX_LINE, "trailer")
            self._take(end + 2)
            if not end:
                return b"".join(parts)
        raise TransportError("too many trailers in the answer")

    def _until_close(self):
        while True:
            if len(self.buffer) > MAX_BODY:
                raise TransportError(f"answer body over {MAX_BODY} bytes")
            data = self.recv(65536)
            if not data:
                return self._take(len(self.buffer))
            self.buffer += data


def _tls_calls(tls):
    """(sendall, recv, recv_into, pending) over an SSLSocket's _ssl object, as
    ssl.py's own: the socket's timeout applies in C; a peer that closes without
    TLS's close_notify is an end of data, as ssl.py reads it (suppress_ragged_eofs)."""
    read, write = tls.read, tls.write

    def sendall(data):
        sent, total = write(data), len(data)
        if sent < total:  # not with OpenSSL's default modes (a write is whole), but cheap to allow
            with memoryview(data) as view, view.cast("B") as rest:
                while sent < total:
                    sent += write(rest[sent:])

    def recv(size):
        try:
            return read(size)
        except ssl.SSLEOFError:
            return b""

    def recv_into(view):
        try:
            return read(len(view), view)
        except ssl.SSLEOFError:
            return 0
    return sendall, recv, recv_into, tls.pending


_STATUS = re.compile(rb"(HTTP/1\.[01]) ([1-9][0-9]{2})(?: [^\r\n]*)?\r\n")
_FIELDS = re.compile(rb"(?:[^\x00-\x20:\x7f]+:[^\r\n]*\r\n)*")  # lines of a name, a colon, a value
_FIELD = re.compile(rb"([^\x00-\x20:\x7f]+):[ \t]*([^\r\n]*)\r\n")  # a value's trailing blanks: strip() where read


def _parse_head(head):
    """(status, version, {name: value}, both in lower case: what is read of
    them is compared so) of an answer's head, in a few steps, none per header."""
    status = _STATUS.match(head)
    if status is None:
        raise TransportError("malformed status line in the answer")
    lines = head[status.end():-2]
    if _FIELDS.fullmatch(lines) is None:
        raise TransportError("malformed header in the answer")
    pairs = _FIELD.findall(lines.lower())
    if len(pairs) > MAX_HEADERS:
        raise TransportError(f"over {MAX_HEADERS} headers in the answer")
    fields = dict(pairs)
    if len(fields) != len(pairs):  # a header repeated: its values joined, as HTTP reads them
        fields = {}
        for name, value in pairs:
            fields[name] = fields[name] + b", " + value if name in fields else value
    return int(status[2]), status[1], fields


def _length(value):
    if not value.isdigit() or len(value) > 12:
        raise TransportError("malformed Content-Length in the answer")
    length = int(value)
    if length > MAX_BODY:
        raise TransportError(f"answer body over {MAX_BODY} bytes")
    return length
