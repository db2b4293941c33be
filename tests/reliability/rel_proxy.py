"""A fault-injecting HTTP proxy on loopback, between the library and a real server.

Every request gets its own upstream connection (``Connection: close``), so every request passes
the fault filter. Faults, chosen per request by a seeded random generator (or scripted):

``503`` / ``500``     answer with that status (an S3-style XML error body) instead of forwarding
``reset``             drop the connection with a TCP RST before forwarding anything
``reset-upload``      forward the request head and part of its body, then RST both sides
``stall``             forward, but hold the answer back for ``stall_s`` then close (client times out)
``stall-body``        send the response head and part of the body, then hold for ``stall_s``
``truncate``          send the response head and only part of the body, then close (FIN)
``corrupt``           flip one byte of the response body (the client must notice by hashing)
``corrupt-upload``    flip one byte of the request body on its way to the server
``lost-response``     forward the request (the server acts on it), then RST instead of answering

Response faults drawn for an answer without a body (a HEAD, a PUT's reply) become ``lost-response``.

The cloud suite's :class:`servers.FaultProxy` injects statuses and resets; this one adds the
stream-level faults (stalls, truncated and corrupted bodies) the reliability suite needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

REQUEST_FAULTS = ("503", "500", "reset", "reset-upload", "corrupt-upload")
RESPONSE_FAULTS = ("stall", "stall-body", "truncate", "corrupt", "lost-response")
ALL_FAULTS = REQUEST_FAULTS + RESPONSE_FAULTS
Match = Callable[[str, str], bool]


def _rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def _content_length(lines: list[str]) -> int | None:
    for h in lines[1:]:
        name, _, value = h.partition(":")
        if name.strip().lower() == "content-length":
            return int(value.strip())
    return None


class ChaosProxy:
    """Loopback proxy in front of ``127.0.0.1:upstream_port`` injecting seeded faults."""

    def __init__(self, upstream_port: int, seed: int = 0, stall_s: float = 3.0) -> None:
        self.upstream_port = upstream_port
        self.stall_s = stall_s
        self.seed = seed
        self._seen: Counter[tuple[str, str]] = Counter()
        self.rate = 0.0
        self.kinds: tuple[str, ...] = ()
        self.match: Match = lambda m, p: True
        self.scripted: list[tuple[int, str, Match]] = []
        self.injected: list[tuple[str, str, str]] = []
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self.port: int = self._sock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._serve, daemon=True, name="chaos-proxy").start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- configuration ----------------------------------------------------------------------------

    def chaos(self, rate: float, kinds: tuple[str, ...] = ALL_FAULTS, match: Match | None = None) -> None:
        """Inject a random fault from ``kinds`` into a ``rate`` fraction of the requests ``match`` accepts."""
        with self._lock:
            self.rate, self.kinds = rate, kinds
            self._seen.clear()
            self.match = match or (lambda m, p: True)

    def script(self, n: int, kind: str, match: Match | None = None) -> None:
        """Inject ``kind`` into the next ``n`` requests ``match`` accepts (before any random faults)."""
        with self._lock:
            self.scripted.append((n, kind, match or (lambda m, p: True)))

    def calm(self) -> None:
        """No more faults."""
        with self._lock:
            self.rate, self.scripted = 0.0, []

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()

    # -- serving ----------------------------------------------------------------------------------

    def _fault_for(self, method: str, path: str) -> tuple[str | None, int]:
        """The fault for this request (or None) and its index in :attr:`injected`."""
        with self._lock:
            self.requests[method] += 1
            kind = None
            for i, (n, k, match) in enumerate(self.scripted):
                if n > 0 and match(method, path):
                    self.scripted[i] = (n - 1, k, match)
                    kind = k
                    break
            else:
                if self.rate and self.match(method, path):
                    kind = self._draw(method, path)
            if kind is None:
                return None, -1
            self.injected.append((kind, method, path))
            return kind, len(self.injected) - 1

    def _draw(self, method: str, path: str) -> str | None:
        """A fault drawn from the seed, the request and how often it was seen: the same request
        sequence per key gets the same faults whatever order concurrent threads send them in."""
        base, _, query = path.partition("?")
        part = [q for q in query.split("&") if q.startswith("partNumber=")]
        key = (method, base + "?" + "&".join(part))
        self._seen[key] += 1
        digest = hashlib.blake2b(f"{self.seed}|{key}|{self._seen[key]}".encode(), digest_size=8).digest()
        x = int.from_bytes(digest, "big") / 2**64
        if x >= self.rate:
            return None
        return self.kinds[int(x / self.rate * len(self.kinds)) % len(self.kinds)]

    def _became(self, index: int, kind: str) -> None:
        with self._lock:
            _, method, path = self.injected[index]
            self.injected[index] = (kind, method, path)

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        up: socket.socket | None = None
        try:
            got = _read_head(conn)
            if got is None:
                return
            head, rest = got
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = _content_length(lines) or 0
            fault, index = self._fault_for(method, path)
            if fault == "reset" or (fault == "reset-upload" and length == 0):
                _rst(conn)
                return
            if fault in ("503", "500"):
                self._drain_body(conn, rest, length)
                body = (
                    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>"
                    + (b"SlowDown" if fault == "503" else b"InternalError")
                    + b"</Code><Message>injected by the reliability proxy</Message></Error>"
                )
                conn.sendall(
                    f"HTTP/1.1 {fault} Injected\r\nContent-Type: application/xml\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            headers = [h for h in lines[1:] if not h.lower().startswith(("connection:", "keep-alive:"))]
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
            up.sendall("\r\n".join([lines[0], *headers, "Connection: close"]).encode("latin-1") + b"\r\n\r\n")
            if not self._forward_body(conn, up, rest, length, fault):
                return
            self._respond(conn, up, fault, index)
        except OSError:
            pass
        finally:
            if up is not None:
                with contextlib.suppress(OSError):
                    up.close()
            with contextlib.suppress(OSError):
                conn.close()

    @staticmethod
    def _drain_body(conn: socket.socket, rest: bytes, length: int) -> None:
        got = len(rest)
        conn.settimeout(5)
        while got < length:
            chunk = conn.recv(min(1 << 20, length - got))
            if not chunk:
                break
            got += len(chunk)

    def _forward_body(
        self, conn: socket.socket, up: socket.socket, rest: bytes, length: int, fault: str | None
    ) -> bool:
        """Send the request body upstream (possibly cut or corrupted); False when the fault ended the exchange."""
        sent = 0
        cut = length // 2 if fault == "reset-upload" else None
        flip = length // 2 if fault == "corrupt-upload" and length else None
        data = rest
        while True:
            if data:
                if flip is not None and sent <= flip < sent + len(data):
                    b = bytearray(data)
                    b[flip - sent] ^= 0x5A
                    data = bytes(b)
                if cut is not None and sent + len(data) >= cut:
                    up.sendall(data[: max(0, cut - sent)])
                    _rst(conn)
                    _rst(up)
                    return False
                up.sendall(data)
                sent += len(data)
            if sent >= length:
                return True
            data = conn.recv(min(1 << 20, length - sent))
            if not data:
                return False

    def _respond(self, conn: socket.socket, up: socket.socket, fault: str | None, index: int) -> None:
        if fault == "stall":
            time.sleep(self.stall_s)
            return
        got = _read_head(up)
        if got is None:
            return
        head, body = got
        lines = head.decode("latin-1").split("\r\n")
        length = _content_length(lines)
        if fault in ("stall-body", "truncate", "corrupt") and not length:
            fault = "lost-response"
            self._became(index, fault)
        if fault == "lost-response":
            _rst(conn)
            return
        if fault in ("stall-body", "truncate", "corrupt") and length:
            while len(body) < length:
                chunk = up.recv(1 << 20)
                if not chunk:
                    break
                body += chunk
            if not body:  # the server hung up first: nothing to corrupt, the client sees a reset
                _rst(conn)
                return
            if fault == "corrupt":
                b = bytearray(body)
                b[len(b) // 2] ^= 0x5A
                conn.sendall(head + b"\r\n\r\n" + bytes(b))
                return
            conn.sendall(head + b"\r\n\r\n" + body[: length // 2])
            if fault == "stall-body":
                time.sleep(self.stall_s)
            return
        conn.sendall(head + b"\r\n\r\n" + body)
        while True:
            chunk = up.recv(1 << 20)
            if not chunk:
                return
            conn.sendall(chunk)
