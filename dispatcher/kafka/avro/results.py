"""Result records (contract section 5) as Avro, schemas/result.avsc: written and read back.

`dispatcher.kafka.results` chooses between this and JSON by `result_format`. Times go in as
aware `datetime`s, ISO 8601 text or epoch seconds and are written as timestamp-millis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from confluent_kafka.schema_registry import SchemaRegistryClient

from dispatcher.kafka.avro import wire
from dispatcher.kafka.avro.registry import RegistrySchemas
from dispatcher.kafka.avro.schemas import bundled, read, write
from dispatcher.model.moments import epoch_millis
from dispatcher.model.outcome import TIME_FIELDS, result_fields

DEFAULT_SUBJECT = "dugaa.dispatch.results-value"


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
        if fields["latency_ms"] is not None:
            fields["latency_ms"] = float(fields["latency_ms"])
        payload = write(fields, bundled("result"))
        return payload if self.schema_id is None else wire.frame(self.schema_id, payload)


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
