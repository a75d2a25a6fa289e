"""The registry path over real HTTP: a minimal Confluent-compatible registry in a thread on loopback.

confluent-kafka's `mock://` client never speaks HTTP; this stand-in serves the three endpoints the
dispatcher uses, so the real client's requests, the id cache and schema references are exercised.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from registry_support import FakeRegistry

from dispatcher.config.secrets import Secret
from dispatcher.errors import DecodeError, RegistryUnavailable
from dispatcher.kafka.avro import (
    AvroEventDecoder,
    RegistrySchemas,
    bundled,
    encode_event,
    event_decoder,
    produce_value,
)
from dispatcher.kafka.avro.registry import (
    AWAY_SECONDS,
    EVENT_CLIENT_DEFAULTS,
    MISS_SECONDS,
    registry_client,
)
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


def test_a_registry_that_fails_or_is_gone_is_an_outage_not_bad_input(
    registry: FakeRegistry,
) -> None:
    for status in (500, 503, 429, 408):
        registry.fail_with = status
        decoder = AvroEventDecoder(RegistrySchemas(client_for(registry.url)))
        with pytest.raises(RegistryUnavailable, match=f"schema id 9: HTTP {status}"):
            decoder(Record("t", 0, 0, None, frame(9, b"\x02a"), ()))
    url = registry.url
    registry.shutdown()
    registry.server_close()
    gone = AvroEventDecoder(RegistrySchemas(client_for(url)))
    with pytest.raises(RegistryUnavailable, match="ConnectError"):
        gone(Record("t", 0, 0, None, frame(9, b"\x02a"), ()))


def test_a_registry_that_does_not_answer_in_time_is_an_outage() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = registry_client({"url": url, "max.retries": 0, "timeout": 0.2})
        assert client is not None
        with pytest.raises(RegistryUnavailable, match="Timeout"):
            AvroEventDecoder(RegistrySchemas(client))(Record("t", 0, 0, None, frame(9, b"x"), ()))


def test_an_unknown_id_or_a_refusal_stays_bad_input(registry: FakeRegistry) -> None:
    decoder = AvroEventDecoder(RegistrySchemas(client_for(registry.url)))
    with pytest.raises(DecodeError, match="schema id 9 is not in the schema registry") as missing:
        decoder(Record("t", 0, 0, None, frame(9, b"\x02a"), ()))
    registry.fail_with = 403
    refused = AvroEventDecoder(RegistrySchemas(client_for(registry.url)))
    with pytest.raises(DecodeError, match="schema registry refused schema id 9") as forbidden:
        refused(Record("t", 0, 0, None, frame(9, b"\x02a"), ()))
    assert not isinstance(missing.value, RegistryUnavailable)
    assert not isinstance(forbidden.value, RegistryUnavailable)


def test_once_the_registry_is_away_other_ids_fail_at_once_until_it_is_asked_again(
    registry: FakeRegistry,
) -> None:
    clock = _Clock()
    schema_id = RegistrySchemas(client_for(registry.url)).register("ev-value", bundled("event"))
    schemas = RegistrySchemas(client_for(registry.url), clock=clock)
    registry.fail_with = 503
    with pytest.raises(RegistryUnavailable):
        schemas.by_id(schema_id)
    with pytest.raises(RegistryUnavailable, match="schema id 77: HTTP 503"):
        schemas.by_id(77)
    assert sum(registry.gets.values()) == 1  # the second look-up made no request
    registry.fail_with = None
    clock.now += AWAY_SECONDS
    assert schemas.by_id(schema_id).name == bundled("event").name
    assert registry.gets[f"/schemas/ids/{schema_id}"] == 2


def test_an_event_decoder_leaves_retrying_to_its_caller() -> None:
    client = registry_client({"url": "http://127.0.0.1:9"}, EVENT_CLIENT_DEFAULTS)
    assert client is not None
    rest = cast(Any, client)._rest_client
    assert (rest.max_retries, rest.timeout) == (0, 5.0)
    mine = registry_client({"url": "http://127.0.0.1:9", "max.retries": 2}, EVENT_CLIENT_DEFAULTS)
    assert cast(Any, mine)._rest_client.max_retries == 2
    decoder = AvroEventDecoder.from_config({"url": "http://127.0.0.1:9"})
    assert decoder.registry is not None
    assert cast(Any, decoder.registry)._client._rest_client.max_retries == 0


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
