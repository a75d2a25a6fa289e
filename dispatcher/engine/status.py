"""The HTTP side of a worker: /healthz, /readyz, /metrics, and room for the admin API."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)
Handler = Callable[["Request"], tuple[int, str, bytes]]


class Request:
    """What an admin route sees of a request."""

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body or b"null")


def json_response(status: int, document: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(document, default=str).encode()


class StatusServer:
    """A small threaded HTTP server; routes are (method, path-prefix) -> handler."""

    def __init__(
        self,
        port: int,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        host: str = "0.0.0.0",
    ) -> None:
        self.routes: list[tuple[str, str, Handler]] = []
        self.route("GET", "/healthz", lambda _r: json_response(200, {"status": "alive"}))
        self.route(
            "GET", "/readyz", lambda _r: json_response(200 if ready() else 503, {"ready": ready()})
        )
        self.route(
            "GET", "/metrics", lambda _r: (200, CONTENT_TYPE_LATEST, generate_latest(registry))
        )
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="admin", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes.append((method, path, handler))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def dispatch(self, request: Request) -> tuple[int, str, bytes]:
        matches = [r for r in self.routes if _matches(r[1], request.path)]
        if not matches:
            return json_response(404, {"error": "not found"})
        for method, _path, handler in matches:
            if method == request.method:
                try:
                    return handler(request)
                except Exception:
                    log.exception("admin route %s %s failed", request.method, request.path)
                    return json_response(500, {"error": "internal error"})
        return json_response(405, {"error": "method not allowed"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(min(length, 1 << 20)) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, content_type, payload = server.dispatch(
                    Request(self.command, path, query, headers, body)
                )
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return _Handler


def _matches(prefix: str, path: str) -> bool:
    return path == prefix or (prefix.endswith("/") and path.startswith(prefix))
