"""A small fault-injecting HTTP proxy on 127.0.0.1 for the sync fault tests.

It handles one request per client connection (it tells both sides `Connection: close`)
and applies the next queued fault to each request:

- "pass":     forward to the upstream and relay the answer
- "down":     close the client connection without reading or answering (reset)
- "500", "503", "200", ...: answer that status itself with a JSON body that is not an
  acknowledgement; the upstream never sees the request
- "429:N":    answer 429 with `Retry-After: N`
- "hang":     read the request and never answer (the client times out)
- "cut":      forward, then relay only the first bytes of the answer and close
- "drop_ack": forward (the collector commits), then close without answering

    with FaultProxy(upstream_port) as proxy:
        proxy.queue("500", "drop_ack")   # the next two requests; then "pass"
        url = proxy.url
"""

from __future__ import annotations

import collections
import socket
import threading
from typing import Deque

__all__ = ["FaultProxy"]

IO_TIMEOUT_S = 30.0
CUT_AFTER_BYTES = 40  # inside the status line/headers: the client sees a broken answer
HEADER_LIMIT = 64 * 1024


class FaultProxy:
    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults: Deque[str] = collections.deque()
        self.default = "pass"
        self.log: list[tuple[str, str]] = []  # (fault, request line)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._hanging: list[socket.socket] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="faultproxy", daemon=True)
        self._thread.start()

    def queue(self, *faults: str) -> None:
        with self._lock:
            self.faults.extend(faults)

    def _next(self) -> str:
        with self._lock:
            return self.faults.popleft() if self.faults else self.default

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        _close(self.sock)  # shutdown() wakes the blocked accept(); close() alone does not
        for s in self._hanging:
            _close(s)
        self._thread.join(timeout=5)

    # --- serving ------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(IO_TIMEOUT_S)
        fault = self._next()
        try:
            if fault == "down":
                self.log.append((fault, ""))
                # SO_LINGER 0: close with a reset, like a dead host's firewall.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
                return
            request = _read_request(client)
            line = request.split(b"\r\n", 1)[0].decode("latin-1")
            self.log.append((fault, line))
            if fault == "hang":
                self._hanging.append(client)
                return  # kept open until close(); the client's timeout fires first
            if fault.split(":")[0].isdigit():
                code, _, retry_after = fault.partition(":")
                extra = f"Retry-After: {retry_after}\r\n" if retry_after else ""
                body = b'{"detail":"injected fault"}'
                client.sendall((f"HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\n"
                                f"{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                                ).encode() + body)
                client.close()
                return
            answer = self._forward(request)
            if fault == "drop_ack":
                _close(client)
            elif fault == "cut":
                client.sendall(answer[:CUT_AFTER_BYTES])
                _close(client)
            else:
                client.sendall(answer)
                client.close()
        except OSError:
            _close(client)

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=IO_TIMEOUT_S) as up:
            up.sendall(request)
            chunks = []
            while True:
                data = up.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks)


def _read_request(sock: socket.socket) -> bytes:
    """Read one request (headers + Content-Length body) and force `Connection: close`."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise OSError("client closed before sending a request")
        buf += data
        if len(buf) > HEADER_LIMIT:
            raise OSError("request headers too large")
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    kept = [lines[0]]
    for h in lines[1:]:
        name = h.split(b":", 1)[0].strip().lower()
        if name == b"content-length":
            length = int(h.split(b":", 1)[1])
        if name in (b"connection", b"keep-alive"):
            continue
        kept.append(h)
    kept.append(b"Connection: close")
    while len(body) < length:
        data = sock.recv(65536)
        if not data:
            raise OSError("client closed mid-body")
        body += data
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone: the point of the fault
    sock.close()
