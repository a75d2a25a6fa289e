"""The results topic: its records written (JSON, or Avro as schemas/result.avsc, by
`result_format`) and read back (delivered webhook-ids for replay; the admin service indexes the rest).

Serializers take the result's fields as a mapping with exactly the contract's names; times may
be aware `datetime`s, ISO 8601 text or epoch seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, DecodeError
from dispatcher.kafka.avro import wire
from dispatcher.kafka.avro.registry import RegistrySchemas, registry_client
from dispatcher.kafka.avro.schemas import AvroSchema, bundled, read, released, write
from dispatcher.kafka.scan import Progress, Start, scan
from dispatcher.model.moments import epoch_millis, iso
from dispatcher.model.outcome import OPTIONAL_FIELDS, TIME_FIELDS, Outcome, result_fields

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

log = logging.getLogger(__name__)
DEFAULT_SUBJECT = "dugaa.dispatch.results-value"


class ResultSerializer(Protocol):
    """Turns one result's fields into the value of a results-topic record."""

    @property
    def content_type(self) -> str: ...

    def serialize(self, result: Mapping[str, Any]) -> bytes: ...

    def serialize_outcome(self, outcome: Outcome) -> bytes:
        """`serialize` of an outcome's record (`Outcome.to_record`)."""
        ...


@dataclass(frozen=True, slots=True)
class JsonResultSerializer:
    """Results as compact UTF-8 JSON objects, fields in contract order, times in ISO 8601."""

    content_type: ClassVar[str] = "application/json"

    def serialize(self, result: Mapping[str, Any]) -> bytes:
        fields = result_fields(result)
        for name in TIME_FIELDS:
            fields[name] = iso(fields[name])
        return _json(fields)

    def serialize_outcome(self, outcome: Outcome) -> bytes:
        """An outcome's record as it is: already valid, in contract order, its times in ISO
        8601 (checking and ordering it again cost a result record half its price)."""
        return _json(outcome.to_record())


def _json(fields: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(fields, default=str)
    except TypeError:  # an integer past 64 bits in a captured value
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, default=str).encode()


@dataclass(frozen=True, slots=True)
class AvroResultSerializer:
    """Results as schemas/result.avsc records: schemaless, or framed with `schema_id`."""

    schema_id: int | None = None
    content_type: ClassVar[str] = "application/avro"

    @classmethod
    def registered(
        cls, client: SchemaRegistryClient, subject: str = DEFAULT_SUBJECT
    ) -> AvroResultSerializer:
        """A serializer whose records carry the id `client`'s registry gives result.avsc."""
        return cls(RegistrySchemas(client).register(subject, bundled("result")))

    def serialize(self, result: Mapping[str, Any]) -> bytes:
        fields = result_fields(result)
        for name in TIME_FIELDS:
            fields[name] = epoch_millis(fields[name])
        fields["captured"] = {
            str(key): value if isinstance(value, str) else json.dumps(value, default=str)
            for key, value in (fields["captured"] or {}).items()
        }
        for name in OPTIONAL_FIELDS:
            fields.setdefault(name, None)
        if fields["latency_ms"] is not None:
            fields["latency_ms"] = float(fields["latency_ms"])
        payload = write(fields, bundled("result"))
        return payload if self.schema_id is None else wire.frame(self.schema_id, payload)

    def serialize_outcome(self, outcome: Outcome) -> bytes:
        return self.serialize(outcome.to_record())


def read_avro_result(value: bytes, registry: RegistrySchemas | None = None) -> dict[str, Any]:
    """An Avro result record read into schemas/result.avsc (its times as aware datetimes;
    `tenant` only when it has one).

    A framed value's writer schema comes from `registry`, whatever version of result.avsc it
    is; without one, and for schemaless values, it is schemas/result.avsc or, for a record
    an earlier version of the dispatcher wrote, one of its released versions.
    """
    current = bundled("result")
    framed = wire.unframe(value)
    if framed is not None and registry is not None:
        schema_id, payload = framed
        return _present(read(payload, registry.by_id(schema_id), reader=current))
    return _present(_read_known(value if framed is None else framed[1], current))


def _read_known(payload: bytes, current: AvroSchema) -> dict[str, Any]:
    """`payload` read as written with result.avsc, else with a released version (newest
    first). A payload fills its schema exactly, so no version reads another's records: the
    current one has fields after the last of v1, which a v1 record ends before."""
    try:
        return dict(read(payload, current))
    except DecodeError:
        for writer in reversed(released("result")):
            try:
                return dict(read(payload, writer, reader=current))
            except DecodeError:
                continue
        raise


def result_schemas(schema_registry: Mapping[str, Any]) -> RegistrySchemas | None:
    """The registry's schemas for reading framed results, or None when the `schema_registry`
    section names no url."""
    client = registry_client(schema_registry)
    return None if client is None else RegistrySchemas(client)


def _present(result: Mapping[str, Any]) -> dict[str, Any]:
    """A read result without the optional fields it does not have, as JSON results are."""
    return {k: v for k, v in result.items() if v is not None or k not in OPTIONAL_FIELDS}


def result_serializer(
    result_format: str, schema_registry: Mapping[str, Any], *, topic: str
) -> ResultSerializer:
    """The serializer for `result_format` (json or avro); Avro records are registered as
    `<topic>-value` and framed when the `schema_registry` section names a url."""
    if result_format == "json":
        return JsonResultSerializer()
    if result_format != "avro":
        raise ConfigError(f"result_format: must be json or avro, not {result_format!r}")
    client = registry_client(schema_registry)
    if client is None:
        return AvroResultSerializer()
    return AvroResultSerializer.registered(client, f"{topic}-value")


def read_result(
    value: bytes | None, registry: RegistrySchemas | None = None
) -> dict[str, Any] | None:
    """A result record's fields (JSON or Avro: a framed one's schema from `registry`), or None
    when it is neither."""
    if not value:
        return None
    if value[:1] == b"{":
        try:
            document = json.loads(value)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    try:
        return read_avro_result(value, registry)
    except Exception:  # not a result this version can read: the caller skips it
        return None


def delivered_keys(
    settings: Settings, since_ms: int | None = None, progress: Progress | None = None
) -> set[str]:
    """The webhook-ids of every pair the results topic shows delivered (from `since_ms` on);
    `progress` is told how far the read has come."""
    keys: set[str] = set()
    unreadable = 0
    registry = result_schemas(settings.schema_registry)
    start = Start(since_ms=since_ms)
    for record in scan(settings, settings.topics.results, start, progress=progress):
        result = read_result(record.value, registry)
        if result is None:
            unreadable += 1
        elif result.get("outcome") == "delivered" and result.get("idempotency_key"):
            keys.add(str(result["idempotency_key"]))
    if unreadable:
        log.warning("%d result records could not be read", unreadable)
    return keys
