"""A switchable HTTP proxy in front of a real server (moto, Airflow): going away, erring, coming back."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FlakyEndpoint:
    """Forwards to `upstream` while up; while down it drops every connection without an answer.

    `on_refused(handler)` is called for each refused request (tests use it to bring the endpoint back).
    `fail_next(status, path_part, times)` answers the next `times` requests whose path contains
    `path_part` with `status` instead of forwarding them (a server erring, e.g. its database locked).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.down = False
        self.refused: list[str] = []
        self.on_refused: Callable[[str, str], None] | None = None
        self.failures: list[tuple[int, str]] = []
        self.failed: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fail_next(self, status: int, path_part: str, times: int = 1) -> None:
        self.failures.extend([(status, path_part)] * times)

    def _failure_for(self, path: str) -> int | None:
        for index, (status, part) in enumerate(self.failures):
            if part in path:
                del self.failures[index]
                return status
        return None

    def __enter__(self) -> FlakyEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.down:
                    proxy.refused.append(f"{self.command} {self.path}")
                    if proxy.on_refused:
                        proxy.on_refused(self.command, self.path)
                    self.close_connection = True
                    return  # no answer at all: the client sees the connection dropped
                status = proxy._failure_for(self.path)
                if status is not None:
                    proxy.failed.append(f"{self.command} {self.path} -> {status}")
                    data = b'{"detail": "injected by the test proxy"}'
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
