"""Scripted HTTP servers on 127.0.0.1 for the transport's tests: each
connection runs `answer(connection, server)` on its own thread, so a test
writes exactly the bytes a well-behaved, broken or hostile server would."""
import socket
import ssl
import subprocess
import threading
from pathlib import Path


class RawServer:
    """Accepts on 127.0.0.1; counts connections and requests; `close` stops it."""

    def __init__(self, answer, context=None):
        self.answer = answer
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests = []  # (head, body) of every request read
        self.open = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme="http", host="127.0.0.1"):
        return f"{scheme}://{host}:{self.port}"

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        try:
            if self.context:
                sock = self.context.wrap_socket(sock, server_side=True)
            self.answer(Connection(sock, self), self)
        except OSError:
            pass  # the client went away or the handshake failed: what some tests want
        finally:
            sock.close()

    def close(self):
        self.listener.close()
        with self.lock:
            for sock in self.open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


class Connection:
    """One accepted connection: read requests, write bytes."""

    def __init__(self, sock, server):
        self.sock = sock
        self.server = server
        self.buffer = b""

    def request(self):
        """(head, body) of the next request, or None when the client closed."""
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buffer) < length:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        with self.server.lock:
            self.server.requests.append((head, body))
        return head, body

    def send(self, data):
        self.sock.sendall(data)


def answer_with(body, status=b"200 OK", extra=b""):
    """An HTTP/1.1 answer with a Content-Length."""
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/x-amz-json-1.1\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def keep_alive(make_answer):
    """A handler answering every request on a connection with make_answer(body)."""
    def answer(connection, server):
        while (request := connection.request()) is not None:
            connection.send(make_answer(request[1]))
    return answer


def self_signed(folder, name="127.0.0.1", alt="IP:127.0.0.1"):
    """(certificate, key) paths of a fresh self-signed certificate for `name`."""
    cert, key = Path(folder) / "server.crt", Path(folder) / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName={alt}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def server_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
