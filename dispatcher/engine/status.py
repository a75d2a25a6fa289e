"""A worker's HTTP side: /healthz, /readyz and /metrics, nothing else (the admin service is a
process of its own, `dispatcher admin`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dispatcher.errors import ConfigError

Answer = tuple[int, str, bytes]


def _json(status: int, document: Any) -> Answer:
    return status, "application/json", json.dumps(document).encode()


def _liveness(stalled: Mapping[str, float]) -> Answer:
    """/healthz: 503 naming each part that has not turned within `liveness_timeout`, and for
    how many seconds (`engine/liveness.py`), else 200. Nothing is logged here: a hung part may
    hold the logging lock, and /healthz must answer whatever hangs."""
    if not stalled:
        return _json(200, {"status": "alive"})
    return _json(
        503, {"status": "stalled", "stalled": {k: round(v, 1) for k, v in stalled.items()}}
    )


def _readiness(ready: bool) -> Answer:
    """/readyz from one reading: a rebalance may change it between two."""
    return _json(200 if ready else 503, {"ready": ready})


class StatusServer:
    """A small threaded HTTP server answering GET on its three paths; 404 elsewhere."""

    def __init__(
        self,
        port: int,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        host: str = "0.0.0.0",
        setting: str = "http_port",
        stalled: Callable[[], Mapping[str, float]] = dict,
    ) -> None:
        """`setting` names, in the error of a port that cannot be had (`ConfigError`), what
        sets it: worker i of `--workers N` takes the i-th port above http_port, admin.port skipped.
        `stalled`: the worker's parts that have hung (`Heartbeats.stalled`), read by /healthz
        on this server's own threads."""
        self.paths: dict[str, Callable[[], Answer]] = {
            "/healthz": lambda: _liveness(stalled()),
            "/readyz": lambda: _readiness(ready()),
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
        }
        try:
            self._server = ThreadingHTTPServer((host, port), self._handler_class())
        except OSError as exc:
            raise ConfigError.cannot_listen(setting, host, port, exc) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="status", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, path: str) -> Answer:
        """The answer to `method path` (query strings ignored)."""
        route = self.paths.get(path.partition("?")[0])
        if route is None:
            return _json(404, {"error": "not found"})
        if method not in ("GET", "HEAD"):
            return _json(405, {"error": "method not allowed"})
        return route()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                status, content_type, payload = server.answer(self.command, self.path)
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.send_header("connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return _Handler
