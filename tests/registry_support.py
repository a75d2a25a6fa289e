"""A minimal Confluent-compatible Schema Registry in a thread on loopback, for tests.

confluent-kafka's `mock://` client never speaks HTTP; this stand-in serves the three endpoints the
dispatcher uses, so the real client's requests, the id cache and schema references are exercised.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


class FakeRegistry(ThreadingHTTPServer):
    """Schemas by id and by (subject, version), and a count of GETs per path."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.schemas: list[dict[str, Any]] = []
        self.gets: Counter[str] = Counter()
        self.fail_with: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        subject = unquote(parts[1])
        same = [s for s in self.server.schemas if s["subject"] == subject]
        entry = {
            "id": len(self.server.schemas) + 1,
            "subject": subject,
            "version": len(same) + 1,
            "schema": body["schema"],
            "references": body.get("references", []),
        }
        self.server.schemas.append(entry)
        self._reply(200, {"id": entry["id"]})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.gets[path] += 1
        if self.server.fail_with:
            self._reply(self.server.fail_with, {"error_code": 50001, "message": "boom"})
            return
        parts = path.strip("/").split("/")
        found: list[dict[str, Any]] = []
        if parts[:2] == ["schemas", "ids"]:
            found = [s for s in self.server.schemas if s["id"] == int(parts[2])]
        elif parts[0] == "subjects":
            subject, version = unquote(parts[1]), int(parts[3])
            found = [
                s for s in self.server.schemas if (s["subject"], s["version"]) == (subject, version)
            ]
        if not found:
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})
        else:
            self._reply(200, found[0])

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def running_registry(port: int = 0) -> Iterator[FakeRegistry]:
    """A registry serving on loopback (on `port`: one stopped before, started again) until the
    block ends."""
    server = FakeRegistry(port)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def avro_erp_hook(receiver_url: str, **extra: Any) -> dict[str, Any]:
    """The hook the Avro tests deliver to: `order.placed` events, their `data.order_id` as the
    field `OrderNo`, POSTed to `<receiver_url>/erp`."""
    from dispatch_support import hook

    return hook(
        "erp",
        f"{receiver_url}/erp",
        ["order.placed"],
        fields=[{"name": "OrderNo", "from": "data.order_id"}],
        **extra,
    )
