"""Avro events in and out: `AvroEventDecoder` for `events.decode` and `encode_event` for producers.

What the decoder accepts, by how the record looks:
- the Schema Registry wire format (magic byte 0, schema id): the writer schema comes from the
  registry. In binary mode (ce_* headers, a content-type that is not `application/cloudevents+avro`)
  the value is the event's data, in any schema; else it must be an event envelope: event.avsc (any version), CloudEvents' compact format, or the
  CloudEvents Avro format.
- schemaless, by content-type: `application/cloudevents+avro` is the CloudEvents Avro format
  (schemas/cloudevents.avsc), any other Avro type (`application/avro`) is schemas/event.avsc.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dispatcher.errors import DecodeError
from dispatcher.kafka.avro import envelope, wire
from dispatcher.kafka.avro.registry import EVENT_CLIENT_DEFAULTS, RegistrySchemas, registry_client
from dispatcher.kafka.avro.schemas import AvroSchema, bundled, read, write
from dispatcher.model.event import Event, Record
from dispatcher.pipeline.charsets import media_type
from dispatcher.pipeline.decode import binary_mode, decode

EVENT_CONTENT_TYPE = "application/avro"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+avro"
Envelope = Literal["dugaa", "cloudevents"]


@dataclass(frozen=True, slots=True)
class AvroEventDecoder:
    """Decodes an Avro-encoded record into an `Event`; the `avro=` argument of `events.decode`."""

    registry: RegistrySchemas | None = None

    @classmethod
    def from_config(cls, schema_registry: Mapping[str, Any]) -> AvroEventDecoder:
        """A decoder for the `schema_registry` configuration section (which may be empty)."""
        client = registry_client(schema_registry, EVENT_CLIENT_DEFAULTS)
        return cls(RegistrySchemas(client) if client is not None else None)

    def __call__(self, record: Record) -> Event:
        """The event in `record`; `DecodeError` saying why when there is none
        (`RegistryUnavailable` when its schema cannot be had just now)."""
        if not record.value:
            raise DecodeError("Avro record has no value")
        binary = binary_mode(record, _content_type(record))
        framed = wire.unframe(record.value)
        if framed is not None:
            schema_id, payload = framed
            schema = self._schema(schema_id)
            if binary:
                return envelope.from_binary(record, read(payload, schema))
            return _from_structured(payload, schema, schema_id)
        if binary:
            raise DecodeError(
                "binary-mode Avro data must be in the Schema Registry wire format (magic byte 0 "
                "and a schema id): without it there is no schema to read it with"
            )
        if _content_type(record) == CLOUDEVENTS_CONTENT_TYPE:
            cloudevents = bundled("cloudevents")
            return envelope.from_cloudevent(read(record.value, cloudevents, record_names=True))
        return envelope.from_envelope(read(record.value, bundled("event")))

    def _schema(self, schema_id: int) -> AvroSchema:
        if self.registry is None:
            raise DecodeError(
                f"value is in the Schema Registry wire format (schema id {schema_id}) but no "
                "schema_registry.url is configured"
            )
        return self.registry.by_id(schema_id)


def encode_event(
    event: Event, *, schema_id: int | None = None, envelope_format: Envelope = "dugaa"
) -> bytes:
    """`event` as Avro: schemas/event.avsc (or the CloudEvents Avro format), schemaless, or in
    the wire format when `schema_id` (that schema's registry id) is given."""
    if envelope_format == "cloudevents":
        payload = write(envelope.to_cloudevent(event), bundled("cloudevents"))
    else:
        payload = write(envelope.to_envelope(event), bundled("event"))
    return payload if schema_id is None else wire.frame(schema_id, payload)


def event_decoder(schema_registry: Mapping[str, Any]) -> Callable[[Record], Event]:
    """`events.decode` accepting Avro too, for the `schema_registry` configuration section."""
    return functools.partial(decode, avro=AvroEventDecoder.from_config(schema_registry))


def produce_value(
    event: Event, *, topic: str, schema_registry: Mapping[str, Any]
) -> tuple[bytes, str]:
    """The value and content-type `dispatcher produce --avro` sends: event.avsc in the wire
    format, registered as `<topic>-value`, when a registry is configured; else schemaless."""
    client = registry_client(schema_registry)
    if client is None:
        return encode_event(event), EVENT_CONTENT_TYPE
    schema_id = RegistrySchemas(client).register(f"{topic}-value", bundled("event"))
    return encode_event(event, schema_id=schema_id), EVENT_CONTENT_TYPE


def content_type(envelope_format: Envelope = "dugaa") -> str:
    """The content-type header that goes with `encode_event`'s output in that format."""
    return CLOUDEVENTS_CONTENT_TYPE if envelope_format == "cloudevents" else EVENT_CONTENT_TYPE


def _from_structured(payload: bytes, schema: AvroSchema, schema_id: int) -> Event:
    fields = _field_names(schema.parsed)
    if fields == envelope.CLOUDEVENTS_FIELDS:
        return envelope.from_cloudevent(read(payload, schema, record_names=True))
    if fields >= envelope.ENVELOPE_FIELDS:
        return envelope.from_envelope(read(payload, schema))
    raise DecodeError(
        f"schema id {schema_id} ({schema.name}) is not a CloudEvent envelope (no id, type and "
        "source fields, not the CloudEvents Avro format) and the record has no ce_* headers"
    )


def _field_names(parsed: Any) -> frozenset[str]:
    if isinstance(parsed, Mapping) and parsed.get("type") == "record":
        return frozenset(str(field["name"]) for field in parsed.get("fields", ()))
    return frozenset()


def _content_type(record: Record) -> str:
    raw = record.header("content-type") or b""
    return media_type(raw.decode("utf-8", "replace"))
