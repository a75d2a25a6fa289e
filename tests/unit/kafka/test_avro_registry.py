"""The registry path over real HTTP: a minimal Confluent-compatible registry in a thread on loopback.

confluent-kafka's `mock://` client never speaks HTTP; this stand-in serves the three endpoints the
dispatcher uses, so the real client's requests, the id cache and schema references are exercised.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from registry_support import FakeRegistry

from dispatcher.config.secrets import Secret
from dispatcher.errors import DecodeError
from dispatcher.kafka.avro import (
    AvroEventDecoder,
    RegistrySchemas,
    bundled,
    encode_event,
    event_decoder,
    produce_value,
)
from dispatcher.kafka.avro.registry import MISS_SECONDS, registry_client
from dispatcher.kafka.avro.schemas import AvroSchema, write
from dispatcher.kafka.avro.wire import frame
from dispatcher.model.event import Event, Record


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


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_unknown_schema_id_is_looked_up_once_within_the_miss_time(
    registry: FakeRegistry,
) -> None:
    clock = _Clock()
    schemas = RegistrySchemas(client_for(registry.url), clock=clock)
    for _ in range(3):
        with pytest.raises(DecodeError, match="schema id 4242 is not in the schema registry"):
            schemas.by_id(4242)
    assert registry.gets["/schemas/ids/4242"] == 1
    clock.now += MISS_SECONDS + 1
    with pytest.raises(DecodeError, match="not in the schema registry"):
        schemas.by_id(4242)
    assert registry.gets["/schemas/ids/4242"] == 2


class _SlowForOneId:
    """A registry client whose look-up of id 1 waits until released; other ids answer at once."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def get_schema(self, schema_id: int) -> Schema:
        if schema_id == 1:
            self.entered.set()
            assert self.release.wait(10)
        return Schema('{"type": "string"}', "AVRO")


def test_a_slow_schema_look_up_does_not_hold_up_other_ids() -> None:
    client = _SlowForOneId()
    schemas = RegistrySchemas(cast(SchemaRegistryClient, client))
    slow = threading.Thread(target=schemas.by_id, args=(1,))
    slow.start()
    try:
        assert client.entered.wait(10)
        other = ThreadPoolExecutor(1).submit(schemas.by_id, 2)
        assert other.result(timeout=5).text == '{"type": "string"}'
    finally:
        client.release.set()
        slow.join(10)
