"""The registry path over real HTTP: a minimal Confluent-compatible registry in a thread on loopback.

confluent-kafka's `mock://` client never speaks HTTP; this stand-in serves the three endpoints the
dispatcher uses, so the real client's requests, the id cache and schema references are exercised.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient

from dispatcher.avro import (
    AvroEventDecoder,
    RegistrySchemas,
    bundled,
    encode_event,
    event_decoder,
    produce_value,
)
from dispatcher.avro.registry import registry_client
from dispatcher.avro.schemas import AvroSchema, write
from dispatcher.avro.wire import frame
from dispatcher.errors import DecodeError
from dispatcher.events import Event, Record
from dispatcher.secrets import Secret


class FakeRegistry(ThreadingHTTPServer):
    """Schemas by id and by (subject, version), and a count of GETs per path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
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


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def client_for(url: str) -> SchemaRegistryClient:
    client = registry_client({"url": url, "max.retries": 0, "timeout": 5})
    assert client is not None
    return client


def test_events_in_the_wire_format_fetch_their_schema_once(registry: FakeRegistry) -> None:
    schema_id = RegistrySchemas(client_for(registry.url)).register("ev-value", bundled("event"))
    decoder = AvroEventDecoder(RegistrySchemas(client_for(registry.url)))
    for n in range(3):
        event = Event(id=f"e{n}", type="order.shipped", source="/shop", data={"n": n})
        assert (
            decoder(Record("t", 0, n, None, encode_event(event, schema_id=schema_id), ())) == event
        )
    assert registry.gets[f"/schemas/ids/{schema_id}"] == 1


def test_schema_references_are_resolved(registry: FakeRegistry) -> None:
    client = client_for(registry.url)
    money = '{"type":"record","name":"Money","namespace":"shop","fields":[{"name":"cents","type":"long"}]}'
    client.register_schema("money", Schema(money, "AVRO"))
    order = (
        '{"type":"record","name":"Order","namespace":"shop",'
        '"fields":[{"name":"total","type":"shop.Money"}]}'
    )
    ref = SchemaReference("shop.Money", "money", 1)
    schema_id = client.register_schema("orders", Schema(order, "AVRO", [ref]))
    named: dict[str, Any] = {}
    AvroSchema.from_text(money, named=named)
    payload = write({"total": {"cents": 1250}}, AvroSchema.from_text(order, named=named))
    headers = (("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_type", b"t"), ("ce_source", b"s"))
    event = AvroEventDecoder(RegistrySchemas(client))(
        Record("t", 0, 0, None, frame(schema_id, payload), headers)
    )
    assert event.data == {"total": {"cents": 1250}}


def test_registry_errors_and_outages_are_decode_errors(registry: FakeRegistry) -> None:
    registry.fail_with = 500
    decoder = AvroEventDecoder(RegistrySchemas(client_for(registry.url)))
    with pytest.raises(DecodeError, match="schema registry refused schema id 9"):
        decoder(Record("t", 0, 0, None, frame(9, b"\x02a"), ()))
    url = registry.url
    registry.shutdown()
    registry.server_close()
    gone = AvroEventDecoder(RegistrySchemas(client_for(url)))
    with pytest.raises(DecodeError, match="unreachable"):
        gone(Record("t", 0, 0, None, frame(9, b"\x02a"), ()))


def test_registry_client_reveals_secrets_and_needs_a_url() -> None:
    assert registry_client({}) is None
    client = registry_client({"url": "mock://secret", "basic.auth.user.info": Secret("u:p")})
    assert client is not None


def test_produced_events_are_registered_under_the_topic_subject(registry: FakeRegistry) -> None:
    config = {"url": registry.url, "max.retries": 0}
    event = Event(id="p1", type="order.shipped", source="/cli", data={"n": 1})
    value, media = produce_value(event, topic="dugaa.events", schema_registry=config)
    assert (media, value[0]) == ("application/avro", 0)
    assert [s["subject"] for s in registry.schemas] == ["dugaa.events-value"]
    assert event_decoder(config)(Record("dugaa.events", 0, 0, None, value, ())) == event
