"""A moto server on 127.0.0.1 counting the AWS calls it serves: the bakes benchmark's CloudWatch.

``python moto_counting.py PORT [TAG_REGEX]`` serves moto's HTTP API; ``GET /_bench/calls`` answers every
call so far as ``[[unix time, service, operation, tag], ...]``. The operation comes from the request path
(rpc-v2-cbor, which botocore uses for CloudWatch), the X-Amz-Target header (JSON protocols) or the Action
form field (query); the tag is the first match of TAG_REGEX in the request body (e.g. the pipeline an alarm
name belongs to), or "".
Stopped by its process group, like every process a benchmark starts.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class Counter:
    """WSGI middleware: note (time, service, operation) of every request, then pass it on."""

    def __init__(self, app: Callable[..., Iterable[bytes]], tag: re.Pattern[bytes] | None = None) -> None:
        self.app, self.tag = app, tag
        self.calls: list[tuple[float, str, str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_bench/calls":
            with self.lock:
                body = json.dumps({"calls": self.calls}).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        if not path.startswith("/moto-api"):
            self._note(environ, path)
        return self.app(environ, start_response)

    def _note(self, environ: dict[str, Any], path: str) -> None:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group(1) if scope else "?"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        operation = ""
        if "/operation/" in path:
            operation = path.rsplit("/", 1)[-1]
        elif environ.get("HTTP_X_AMZ_TARGET"):
            operation = environ["HTTP_X_AMZ_TARGET"].rsplit(".", 1)[-1]
        elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            operation = parse_qs(raw.decode(errors="replace")).get("Action", ["?"])[0]
        found = self.tag.search(raw) if self.tag else None
        tag = found.group(0).decode(errors="replace") if found else ""
        with self.lock:
            self.calls.append((time.time(), service, operation or "?", tag))


def main() -> None:
    port = int(sys.argv[1])
    tag = re.compile(sys.argv[2].encode()) if len(sys.argv) > 2 else None
    app = Counter(DomainDispatcherApplication(create_backend_app), tag)
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(f"moto (counting) on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
