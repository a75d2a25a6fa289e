"""Result records (contract section 5) as bytes for the results topic: JSON (default) or Avro.

Both take the result's fields as a mapping, with exactly the contract's names. Times may be given
as aware `datetime`s, ISO 8601 strings or epoch seconds; JSON writes ISO 8601 UTC strings with
milliseconds, Avro timestamp-millis (schemas/result.avsc).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from confluent_kafka.schema_registry import SchemaRegistryClient

from dispatcher.errors import ConfigError
from dispatcher.kafka.avro import wire
from dispatcher.kafka.avro.registry import RegistrySchemas, registry_client
from dispatcher.kafka.avro.schemas import bundled, read, write
from dispatcher.model.outcome import RESULT_FIELDS as RESULT_FIELDS

OUTCOMES = ("delivered", "dead_lettered")
TIME_FIELDS = ("first_attempt_at", "completed_at")
DEFAULT_SUBJECT = "dugaa.dispatch.results-value"


class ResultSerializer(Protocol):
    """Turns one result's fields into the value of a results-topic record."""

    @property
    def content_type(self) -> str: ...

    def serialize(self, result: Mapping[str, Any]) -> bytes: ...


@dataclass(frozen=True, slots=True)
class JsonResultSerializer:
    """Results as compact UTF-8 JSON objects, fields in contract order."""

    content_type: ClassVar[str] = "application/json"

    def serialize(self, result: Mapping[str, Any]) -> bytes:
        fields = checked(result)
        for name in TIME_FIELDS:
            fields[name] = iso_millis(fields[name])
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
        fields = checked(result)
        for name in TIME_FIELDS:
            fields[name] = epoch_millis(fields[name])
        fields["captured"] = {
            str(key): value if isinstance(value, str) else json.dumps(value, default=str)
            for key, value in (fields["captured"] or {}).items()
        }
        if fields["latency_ms"] is not None:
            fields["latency_ms"] = float(fields["latency_ms"])
        payload = write(fields, bundled("result"))
        return payload if self.schema_id is None else wire.frame(self.schema_id, payload)


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


def read_result(value: bytes, registry: RegistrySchemas | None = None) -> dict[str, Any]:
    """An Avro result record read into schemas/result.avsc (its times as aware datetimes).

    A framed value's writer schema comes from `registry`; without one, and for schemaless
    values, it is taken to be schemas/result.avsc.
    """
    current = bundled("result")
    framed = wire.unframe(value)
    if framed is None:
        return dict(read(value, current))
    schema_id, payload = framed
    writer = current if registry is None else registry.by_id(schema_id)
    return dict(read(payload, writer, reader=current))


def checked(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result's fields in contract order; `ValueError` naming missing or unknown ones."""
    missing = [name for name in RESULT_FIELDS if name not in result]
    unknown = sorted(set(result) - set(RESULT_FIELDS))
    if missing or unknown:
        raise ValueError(f"result fields: missing {missing or 'none'}, unknown {unknown or 'none'}")
    if result["outcome"] not in OUTCOMES:
        raise ValueError(f"result outcome must be one of {OUTCOMES}, not {result['outcome']!r}")
    return {name: result[name] for name in RESULT_FIELDS}


def moment(value: datetime | str | float) -> datetime:
    """A time given as an aware datetime (naive ones are UTC), ISO 8601 text or epoch seconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return moment(datetime.fromisoformat(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    raise ValueError(f"not a time: {value!r}")


def epoch_millis(value: datetime | str | float) -> int:
    """Milliseconds since the epoch, as Avro's timestamp-millis holds them."""
    return round(moment(value).timestamp() * 1000)


def iso_millis(value: datetime | str | float) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, e.g. 2026-11-29T19:31:00.123Z."""
    utc = moment(value).astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
