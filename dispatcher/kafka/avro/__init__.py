"""Avro for the dispatcher: the schemas in schemas/, the registry, Avro events in.

Result records in Avro are written and read by `dispatcher.kafka.results`."""

from dispatcher.kafka.avro.decoder import (
    CLOUDEVENTS_CONTENT_TYPE,
    EVENT_CONTENT_TYPE,
    AvroEventDecoder,
    content_type,
    encode_event,
    event_decoder,
    produce_value,
)
from dispatcher.kafka.avro.headers import dead_letter_fields
from dispatcher.kafka.avro.registry import RegistrySchemas, registry_client
from dispatcher.kafka.avro.schemas import AvroSchema, bundled

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "EVENT_CONTENT_TYPE",
    "AvroEventDecoder",
    "AvroSchema",
    "RegistrySchemas",
    "bundled",
    "content_type",
    "dead_letter_fields",
    "encode_event",
    "event_decoder",
    "produce_value",
    "registry_client",
]
