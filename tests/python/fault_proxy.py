"""A tiny HTTP/1.1 proxy that injects faults after the upstream has answered (holds no tests).

Each connection carries one request (the proxy answers with ``Connection: close``). The
request is forwarded to the upstream server and its whole response read; then, while
``faults`` is not empty, a request gets the next fault instead of that response:

- ``"drop"``: the connection is closed without a byte of response (the server stored the
  request, the client never hears of it);
- ``"503"``: ``503 Service Unavailable`` with ``Retry-After: <retry_after>``.

``requests`` records ``(monotonic time, method, path, Idempotency-Key)`` of every request.
"""

from __future__ import annotations

import http.client
import socket
import socketserver
import threading
import time

from servers import HOST, free_port
from typing_extensions import Self


class FaultProxy:
    def __init__(self, upstream_port: int, faults: list[str] | None = None, retry_after: int = 1) -> None:
        self.upstream_port = upstream_port
        self.faults = list(faults or [])
        self.retry_after = retry_after
        self.requests: list[tuple[float, str, str, str | None]] = []
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.rfile, self.connection)

        self._server = socketserver.ThreadingTCPServer((HOST, self.port), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def posts(self) -> list[tuple[float, str, str, str | None]]:
        with self._lock:
            return [r for r in self.requests if r[1] == "POST"]

    def _handle(self, rfile, conn: socket.socket) -> None:
        request_line = rfile.readline().decode("latin-1").strip()
        if not request_line:
            return
        method, path, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        while (line := rfile.readline().decode("latin-1")) not in ("\r\n", "\n", ""):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = rfile.read(int(headers.get("content-length", "0")))
        with self._lock:
            self.requests.append((time.monotonic(), method, path, headers.get("idempotency-key")))
            fault = self.faults.pop(0) if self.faults else None

        upstream = http.client.HTTPConnection(HOST, self.upstream_port, timeout=30)
        forwarded = {k: v for k, v in headers.items() if k not in ("connection", "host", "content-length")}
        upstream.request(method, path, body=body, headers=forwarded)
        response = upstream.getresponse()
        payload = response.read()
        status, reason, upstream_headers = response.status, response.reason, response.getheaders()
        upstream.close()

        if fault == "drop":
            conn.shutdown(socket.SHUT_RDWR)
            return
        if fault == "503":
            payload = b'{"detail": "injected fault"}'
            status, reason = 503, "Service Unavailable"
            upstream_headers = [("content-type", "application/json"), ("retry-after", str(self.retry_after))]
        head = [f"HTTP/1.1 {status} {reason}"]
        head += [
            f"{k}: {v}" for k, v in upstream_headers if k.lower() not in ("content-length", "connection")
        ]
        head += [f"content-length: {len(payload)}", "connection: close", "", ""]
        conn.sendall("\r\n".join(head).encode("latin-1") + payload)
