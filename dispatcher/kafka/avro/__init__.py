"""Avro for the dispatcher: the schemas in schemas/, Avro events in, Avro result records out."""

from dispatcher.kafka.avro.deadletter import dead_letter_fields
from dispatcher.kafka.avro.decoder import (
    CLOUDEVENTS_CONTENT_TYPE,
    EVENT_CONTENT_TYPE,
    AvroEventDecoder,
    content_type,
    encode_event,
    event_decoder,
    produce_value,
)
from dispatcher.kafka.avro.registry import RegistrySchemas, registry_client
from dispatcher.kafka.avro.results import AvroResultSerializer, read_result
from dispatcher.kafka.avro.schemas import AvroSchema, bundled

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "EVENT_CONTENT_TYPE",
    "AvroEventDecoder",
    "AvroResultSerializer",
    "AvroSchema",
    "RegistrySchemas",
    "bundled",
    "content_type",
    "dead_letter_fields",
    "encode_event",
    "event_decoder",
    "produce_value",
    "read_result",
    "registry_client",
]
