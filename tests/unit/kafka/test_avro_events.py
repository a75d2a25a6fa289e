"""Avro events: schemaless envelopes by content-type, the wire format through a registry, errors."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from dispatcher.errors import ConfigError, DecodeError
from dispatcher.kafka.avro import (
    AvroEventDecoder,
    RegistrySchemas,
    bundled,
    content_type,
    encode_event,
    event_decoder,
    produce_value,
)
from dispatcher.kafka.avro.envelope import from_binary
from dispatcher.kafka.avro.schemas import AvroSchema, write
from dispatcher.kafka.avro.wire import frame
from dispatcher.model.event import Event, Record
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.render.formats import json_body

EVENT = Event(
    id="evt-1",
    type="order.shipped",
    source="/shop/orders",
    time="2026-11-29T10:00:00+03:00",
    subject="order-7",
    data={"order_id": 7, "customer": {"phone": "+254700000000"}, "total": 12.5, "tags": ["a"]},
)


def record(value: bytes | None, *headers: tuple[str, str]) -> Record:
    encoded = tuple((name, text.encode()) for name, text in headers)
    return Record(
        topic="dugaa.events", partition=0, offset=3, key=b"k", value=value, headers=encoded
    )


@pytest.fixture
def client() -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": "mock://test-avro-events"})


@pytest.fixture
def decoder(client: SchemaRegistryClient) -> AvroEventDecoder:
    return AvroEventDecoder(RegistrySchemas(client))


@pytest.mark.parametrize("envelope", ["dugaa", "cloudevents"])
def test_schemaless_event_round_trips_by_content_type(envelope: Any) -> None:
    value = encode_event(EVENT, envelope_format=envelope)
    got = decode(record(value, ("content-type", content_type(envelope))), avro=AvroEventDecoder())
    assert got == EVENT


@pytest.mark.parametrize(
    ("data", "datacontenttype"),
    [
        (None, None),
        ("plain text", None),
        ("<a>x</a>", "application/xml"),
        ({"k": [1, 2.5, None, True]}, "application/json; charset=utf-8"),
        ("a JSON string", "application/json"),
        (42, None),
    ],
)
def test_event_data_of_every_kind_survives_the_envelope(data: Any, datacontenttype: Any) -> None:
    event = Event(id="1", type="t", source="s", datacontenttype=datacontenttype, data=data)
    value = encode_event(event)
    assert AvroEventDecoder()(record(value, ("content-type", "application/avro"))) == event


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"total": 12.5,}', "data is not valid JSON"),
        (b"[" * 70 + b"]" * 70, "data nests deeper than 64 levels"),
        (b"[" * 100_000 + b"]" * 100_000, "data nests too deeply"),
    ],
)
def test_json_data_in_the_envelope_is_read_as_a_json_event_is(data: bytes, message: str) -> None:
    envelope = {"id": "1", "type": "t", "source": "s", "datacontenttype": "application/json"}
    value = write({**envelope, "data": data}, bundled("event"))
    with pytest.raises(DecodeError, match=message):
        AvroEventDecoder()(record(value, ("content-type", "application/avro")))
    exact = write({**envelope, "data": b'{"n": 123456789012345678901}'}, bundled("event"))
    event = AvroEventDecoder()(record(exact, ("content-type", "application/avro")))
    assert event.data == {"n": 123456789012345678901}  # every digit, as a JSON event keeps them


def test_binary_data_that_is_not_text_becomes_base64() -> None:
    envelope = {"id": "1", "type": "t", "source": "s", "datacontenttype": "image/png"}
    value = write({**envelope, "data": b"\x89PNG\xff"}, bundled("event"))
    event = AvroEventDecoder()(record(value, ("content-type", "application/avro")))
    assert event.data == base64.b64encode(b"\x89PNG\xff").decode()
    assert event.specversion == "1.0"


def test_wire_format_event_is_read_with_the_registry_schema(
    client: SchemaRegistryClient, decoder: AvroEventDecoder
) -> None:
    schema_id = RegistrySchemas(client).register("dugaa.events-value", bundled("event"))
    value = encode_event(EVENT, schema_id=schema_id)
    assert value[:5] == b"\x00" + schema_id.to_bytes(4, "big")
    assert decode(record(value), avro=decoder) == EVENT


def test_wire_format_cloudevents_format_is_recognised_by_its_shape(
    client: SchemaRegistryClient, decoder: AvroEventDecoder
) -> None:
    schema_id = RegistrySchemas(client).register("ce-value", bundled("cloudevents"))
    value = encode_event(EVENT, schema_id=schema_id, envelope_format="cloudevents")
    assert decoder(record(value)) == EVENT


def test_binary_mode_takes_attributes_from_headers_and_data_from_the_registry(
    client: SchemaRegistryClient, decoder: AvroEventDecoder
) -> None:
    order = (
        '{"type":"record","name":"OrderShipped","namespace":"shop","fields":['
        '{"name":"order_id","type":"long"},'
        '{"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},'
        '{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},'
        '{"name":"note","type":["null","string"],"default":null}]}'
    )
    schema_id = client.register_schema("orders-value", Schema(order, "AVRO"))
    payload = write(
        {"order_id": 7, "total": Decimal("12.50"), "at": 1_764_410_400_000, "note": None},
        AvroSchema.from_text(order),
    )
    headers = [("ce_specversion", "1.0"), ("ce_id", "b-1"), ("ce_type", "order.shipped")]
    headers += [("ce_source", "/shop"), ("content-type", "application/avro")]
    event = decode(record(frame(schema_id, payload), *headers), avro=decoder)
    assert (event.id, event.type, event.source) == ("b-1", "order.shipped", "/shop")
    assert event.datacontenttype == "application/avro"
    assert event.data == {
        "order_id": 7,
        "total": Decimal("12.50"),
        "at": "2025-11-29T10:00:00+00:00",
        "note": None,
    }


def test_the_cloudevents_avro_format_with_ce_headers_besides_is_structured_mode() -> None:
    value = encode_event(EVENT, envelope_format="cloudevents")
    headers = [("ce_specversion", "1.0"), ("ce_id", EVENT.id), ("ce_type", EVENT.type)]
    headers += [("ce_source", EVENT.source), ("content-type", "application/cloudevents+avro")]
    assert decode(record(value, *headers), avro=AvroEventDecoder()) == EVENT


def test_an_envelope_of_the_producers_own_with_typed_data_gives_hooks_json_like_data(
    client: SchemaRegistryClient, decoder: AvroEventDecoder
) -> None:
    """As binary mode gives the same data: bytes as base64, UUIDs and times as their text, so
    that the event renders (a UUID or bytes left as they were read failed every JSON hook)."""
    order = (
        '{"type":"record","name":"Order","fields":[{"name":"order_id","type":'
        '{"type":"string","logicalType":"uuid"}},{"name":"scan","type":"bytes"},'
        '{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}'
    )
    envelope = (
        '{"type":"record","name":"OrderEvent","namespace":"shop","fields":['
        '{"name":"id","type":"string"},{"name":"type","type":"string"},'
        f'{{"name":"source","type":"string"}},{{"name":"data","type":{order}}}]}}'
    )
    schema_id = client.register_schema("orders-value", Schema(envelope, "AVRO"))
    data = {"order_id": uuid.UUID(int=7), "scan": b"\x00\xff", "at": 1_764_410_400_000}
    value = {"id": "o-1", "type": "order.shipped", "source": "/shop", "data": data}
    payload = write(value, AvroSchema.from_text(envelope))

    event = decode(record(frame(schema_id, payload)), avro=decoder)

    assert event.data == {
        "order_id": "00000000-0000-0000-0000-000000000007",
        "scan": base64.b64encode(b"\x00\xff").decode(),
        "at": "2025-11-29T10:00:00+00:00",
    }
    assert json_body(event.data)  # what a hook without fields sends


def test_cloudevents_format_json_tree_becomes_plain_json() -> None:
    tree = ("io.cloudevents.CloudEventData", {"value": {"phone": "+2547", "n": 2.0, "x": 0.5}})
    nested = {"value": {"items": [{"value": {"sku": "A"}}], "meta": {"m": {"value": {}}}}}
    data = {"customer": tree, "order": ("io.cloudevents.CloudEventData", nested), "ok": True}
    attribute = {"id": "1", "type": "t", "source": "s", "specversion": "1.0"}
    value = write({"attribute": attribute, "data": data}, bundled("cloudevents"))
    event = AvroEventDecoder()(record(value, ("content-type", "application/cloudevents+avro")))
    assert event.data == {
        "customer": {"phone": "+2547", "n": 2, "x": 0.5},
        "order": {"items": [{"sku": "A"}], "meta": {"m": {}}},
        "ok": True,
    }


@pytest.mark.parametrize(
    ("value", "headers", "message"),
    [
        (b"", [("content-type", "application/avro")], "no value"),
        (b"\x02", [("content-type", "application/avro")], "not valid Avro"),
        (frame(1, b"\x02a"), [], "no schema_registry.url"),
        (b"\x02ab", [("content-type", "application/avro"), ("ce_specversion", "1.0")], "wire"),
        (b"\x02a\x02b\x02c\x02\x00\x00\x00\x00\x00\x00\x00\xff", [], "left over"),
    ],
)
def test_undecodable_values_raise_decode_error_saying_why(
    value: bytes, headers: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(DecodeError, match=message) as caught:
        AvroEventDecoder()(record(value, *headers))
    assert caught.value.kind == "decode"


def test_unknown_schema_id_is_a_decode_error(decoder: AvroEventDecoder) -> None:
    with pytest.raises(DecodeError, match="schema id 4242 is not in the schema registry"):
        decoder(record(frame(4242, b"\x02a")))


def test_registry_schema_that_is_no_envelope_needs_ce_headers(
    client: SchemaRegistryClient, decoder: AvroEventDecoder
) -> None:
    schema_id = client.register_schema("x-value", Schema('"string"', "AVRO"))
    with pytest.raises(DecodeError, match="not a CloudEvent envelope"):
        decoder(record(frame(schema_id, b"\x02a")))


def test_missing_required_attribute_is_a_decode_error() -> None:
    value = write({"id": "1", "type": "", "source": "s"}, bundled("event"))
    with pytest.raises(DecodeError, match="type"):
        AvroEventDecoder()(record(value, ("content-type", "application/avro")))


def test_decoder_from_config_without_url_has_no_registry() -> None:
    assert AvroEventDecoder.from_config({}).registry is None
    assert AvroEventDecoder.from_config({"url": "mock://cfg"}).registry is not None


def test_event_decoder_accepts_json_and_avro_alike() -> None:
    decode_any = event_decoder({})
    avro = record(encode_event(EVENT), ("content-type", "application/avro"))
    as_json = record(b'{"specversion":"1.0","id":"j","type":"t","source":"s"}')
    assert decode_any(avro) == EVENT
    assert decode_any(as_json).id == "j"


def test_produce_value_without_a_registry_is_schemaless() -> None:
    value, media = produce_value(EVENT, topic="dugaa.events", schema_registry={})
    assert (value, media) == (encode_event(EVENT), "application/avro")


def test_unreachable_registry_when_producing_is_a_config_error() -> None:
    config = {"url": "http://127.0.0.1:9", "max.retries": 0, "timeout": 2}
    with pytest.raises(ConfigError, match=r"did not register dugaa\.events-value"):
        produce_value(EVENT, topic="dugaa.events", schema_registry=config)


@pytest.mark.parametrize("envelope", ["dugaa", "cloudevents"])
def test_the_tenant_travels_in_both_avro_formats(envelope: Any) -> None:
    event = Event(id="1", type="t", source="s", tenant="acme", data={"n": 1})
    value = encode_event(event, envelope_format=envelope)
    got = decode(record(value, ("content-type", content_type(envelope))), avro=AvroEventDecoder())
    assert got.tenant == "acme"
    assert got == event


@pytest.mark.parametrize("envelope", ["dugaa", "cloudevents"])
def test_the_trace_context_travels_in_both_avro_formats(envelope: Any) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = Event(id="1", type="t", source="s", traceparent=traceparent, tracestate="a=1")
    value = encode_event(event, envelope_format=envelope)
    got = decode(record(value, ("content-type", content_type(envelope))), avro=AvroEventDecoder())
    assert (got.traceparent, got.tracestate) == (traceparent, "a=1")


def test_the_cloudevents_avro_format_carries_the_distributed_tracing_extension() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    attribute = {"id": "1", "type": "t", "source": "s", "specversion": "1.0"}
    attribute |= {"traceparent": traceparent, "tracestate": "a=1"}
    value = write({"attribute": attribute, "data": None}, bundled("cloudevents"))
    event = AvroEventDecoder()(record(value, ("content-type", "application/cloudevents+avro")))
    assert (event.traceparent, event.tracestate) == (traceparent, "a=1")


@pytest.mark.parametrize("envelope", ["dugaa", "cloudevents"])
def test_a_producers_extensions_travel_in_both_avro_formats(envelope: Any) -> None:
    event = Event(id="1", type="t", source="s", tenant="acme", extensions={"region": "eu"})
    value = encode_event(event, envelope_format=envelope)
    got = decode(record(value, ("content-type", content_type(envelope))), avro=AvroEventDecoder())
    assert (got.extensions, got.tenant) == ({"region": "eu"}, "acme")


def test_event_avsc_extensions_are_text_so_integers_and_booleans_travel_in_their_text() -> None:
    event = Event(id="1", type="t", source="s", extensions={"priority": 2, "urgent": True})
    value = encode_event(event)
    got = AvroEventDecoder()(record(value, ("content-type", "application/avro")))
    assert got.extensions == {"priority": "2", "urgent": "true"}


def test_the_cloudevents_avro_format_keeps_an_extensions_type_and_gives_bytes_as_base64() -> None:
    attribute = {"id": "1", "type": "t", "source": "s", "specversion": "1.0", "tenant": "acme"}
    attribute |= {"priority": 2, "urgent": False, "key": b"\x00\xff", "gone": None}
    value = write({"attribute": attribute, "data": None}, bundled("cloudevents"))
    event = AvroEventDecoder()(record(value, ("content-type", "application/cloudevents+avro")))
    assert event.extensions == {"priority": 2, "urgent": False, "key": "AP8="}
    assert event.tenant == "acme"


def test_an_avro_binary_mode_event_keeps_its_ce_header_extensions() -> None:
    headers = [("ce_specversion", "1.0"), ("ce_id", "b-1"), ("ce_type", "t"), ("ce_source", "/s")]
    headers += [("ce_region", "eu"), ("content-type", "application/avro")]
    event = from_binary(record(b"", *headers), {"n": 1})
    assert (event.extensions, event.data) == ({"region": "eu"}, {"n": 1})


def test_extensions_of_a_producers_own_envelope_are_read_from_its_extensions_map(
    client: SchemaRegistryClient, decoder: AvroEventDecoder
) -> None:
    envelope = (
        '{"type":"record","name":"OrderEvent","namespace":"shop","fields":['
        '{"name":"id","type":"string"},{"name":"type","type":"string"},'
        '{"name":"source","type":"string"},{"name":"data","type":"bytes"},'
        '{"name":"extensions","type":{"type":"map","values":["string","int","boolean"]}}]}'
    )
    schema_id = client.register_schema("own-value", Schema(envelope, "AVRO"))
    extensions = {"region": "eu", "priority": 2, "urgent": True, "tenant": "acme"}
    value = {"id": "o-1", "type": "t", "source": "/shop", "data": b"{}", "extensions": extensions}
    payload = write(value, AvroSchema.from_text(envelope))

    event = decode(record(frame(schema_id, payload)), avro=decoder)

    assert event.extensions == {"region": "eu", "priority": 2, "urgent": True}
    assert event.tenant == "acme"
