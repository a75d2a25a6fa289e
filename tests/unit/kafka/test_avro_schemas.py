"""The schemas in schemas/: documented, shaped as the contract says, and read safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.errors import DecodeError
from dispatcher.kafka.avro import AvroEventDecoder, bundled
from dispatcher.kafka.avro.headers import dead_letter_fields, header_fields
from dispatcher.kafka.avro.schemas import BUNDLED, AvroSchema, is_recursive, read
from dispatcher.model.deadletter import dead_letter_headers
from dispatcher.model.event import Event, Record
from dispatcher.model.outcome import OPTIONAL_FIELDS, RESULT_FIELDS, Outcome, Source

SCHEMAS = Path(__file__).parents[3] / "schemas"
CONTRACT_DEAD_LETTER_HEADERS = [
    "dispatcher.hook.id",
    "dispatcher.error.kind",
    "dispatcher.error.message",
    "dispatcher.http.status",
    "dispatcher.attempts",
    "dispatcher.idempotency.key",
    "dispatcher.source.topic",
    "dispatcher.source.partition",
    "dispatcher.source.offset",
    "dispatcher.failed.at",
]


def documented(node: Any, where: str) -> list[str]:
    """Where a record, enum or field in a schema lacks a doc."""
    missing: list[str] = []
    if isinstance(node, list):
        for branch in node:
            missing += documented(branch, where)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum") and not node.get("doc"):
            missing.append(f"{where}:{node['name']}")
        for field in node.get("fields", ()):
            if not field.get("doc"):
                missing.append(f"{where}.{field['name']}")
            missing += documented(field["type"], f"{where}.{field['name']}")
        for key in ("items", "values"):
            missing += documented(node.get(key), where)
    return missing


@pytest.mark.parametrize("name", BUNDLED)
def test_every_record_enum_and_field_is_documented(name: str) -> None:
    assert documented(json.loads((SCHEMAS / f"{name}.avsc").read_text()), name) == []


def test_result_schema_has_exactly_the_contract_fields_in_order() -> None:
    fields = [field["name"] for field in bundled("result").parsed["fields"]]
    assert fields == [*RESULT_FIELDS, *OPTIONAL_FIELDS]


def test_dead_letter_schema_covers_every_contract_header() -> None:
    assert list(header_fields())[: len(CONTRACT_DEAD_LETTER_HEADERS)] == (
        CONTRACT_DEAD_LETTER_HEADERS
    )


def test_dead_letter_headers_written_by_outcomes_read_into_the_schema() -> None:
    outcome = Outcome(
        event_id="e1",
        event_type="order.shipped",
        hook_id="sms-ke",
        outcome="dead_lettered",
        attempts=3,
        idempotency_key="msg_1",
        source=Source("dugaa.events", 2, 41),
        first_attempt_at=1_764_410_000.0,
        completed_at=1_764_410_001.0,
        error_kind="timeout",
        error="read timed out",
    )
    original = Record("dugaa.events", 2, 41, b"k", b"{}", (("ce_id", b"e1"),))
    headers = dead_letter_headers(outcome, original, failed_at=1_764_410_001.25)
    fields = dead_letter_fields(Record("dlq", 0, 0, b"k", b"{}", headers))
    assert fields["http_status"] is None
    assert (fields["attempts"], fields["source_offset"]) == (3, 41)
    assert fields["failed_at"] == 1_764_410_001_250
    assert fields["replayed_from"] is None
    assert fastavro.validate(fields, bundled("deadletter").parsed)


def test_dead_letter_without_its_headers_is_refused() -> None:
    with pytest.raises(ValueError, match=r"dispatcher\.hook\.id"):
        dead_letter_fields(Record("dlq", 0, 0, None, b"{}", ()))


@pytest.mark.parametrize(
    ("schema", "recursive"),
    [
        ({"type": "record", "name": "N", "fields": [{"name": "n", "type": ["null", "N"]}]}, True),
        (
            {
                "type": "record",
                "name": "a.Tree",
                "fields": [{"name": "kids", "type": {"type": "array", "items": "a.Tree"}}],
            },
            True,
        ),
        (
            {
                "type": "record",
                "name": "Pair",
                "fields": [
                    {"name": "x", "type": {"type": "fixed", "name": "F", "size": 2}},
                    {"name": "y", "type": "F"},
                ],
            },
            False,
        ),
    ],
)
def test_recursion_is_detected_only_where_a_type_contains_itself(
    schema: dict[str, Any], recursive: bool
) -> None:
    assert is_recursive(schema) is recursive


def test_bundled_schemas_know_which_need_the_safe_reader() -> None:
    assert bundled("cloudevents").recursive
    assert not bundled("event").recursive
    assert not bundled("result").recursive


def nested_cloudevent(depth: int) -> Record:
    """A CloudEvents-format value whose data is `depth` arrays of objects inside each other."""
    attributes = b"\x08" + b"".join(
        bytes([len(k) * 2]) + k + b"\x06" + bytes([len(v) * 2]) + v
        for k, v in ((b"id", b"1"), (b"type", b"t"), (b"source", b"s"), (b"specversion", b"1.0"))
    )
    # data: array<CloudEventData> -> one item -> {"a": array<CloudEventData> -> ...}
    value = attributes + b"\x00\x08" + b"\x02\x02\x02a\x06" * depth + b"\x00" * (1 + 2 * depth)
    return Record("t", 0, 0, None, value, (("content-type", b"application/cloudevents+avro"),))


def test_nested_cloudevents_data_of_sane_depth_decodes() -> None:
    assert AvroEventDecoder()(nested_cloudevent(3)).data == [{"a": [{"a": [{"a": []}]}]}]


def test_deeply_nested_value_is_a_decode_error_not_a_crash() -> None:
    with pytest.raises(DecodeError, match="nests too deeply"):
        AvroEventDecoder()(nested_cloudevent(20_000))


def test_recursive_schema_reads_values_of_sane_depth() -> None:
    schema = AvroSchema.from_text(
        '{"type":"record","name":"N","fields":[{"name":"n","type":["null","N"]}]}'
    )
    assert read(b"\x02\x02\x00", schema) == {"n": {"n": {"n": None}}}


@settings(max_examples=300, deadline=None)
@given(
    value=st.binary(min_size=1, max_size=64),
    content_type=st.sampled_from(["application/avro", "application/cloudevents+avro"]),
)
def test_arbitrary_bytes_decode_to_an_event_or_a_decode_error(
    value: bytes, content_type: str
) -> None:
    record = Record("t", 0, 0, None, value, (("content-type", content_type.encode()),))
    try:
        event = AvroEventDecoder()(record)
    except DecodeError:
        return
    assert isinstance(event, Event)
