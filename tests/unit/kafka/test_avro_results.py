"""Result records as JSON and Avro: the contract's fields, the same instants, read back as written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from dispatcher.errors import ConfigError, DecodeError
from dispatcher.kafka.avro import RegistrySchemas
from dispatcher.kafka.results import (
    AvroResultSerializer,
    JsonResultSerializer,
    ResultSerializer,
    result_serializer,
)
from dispatcher.kafka.results import read_avro_result as read_result
from dispatcher.model.moments import epoch_millis
from dispatcher.model.moments import iso as iso_millis
from dispatcher.model.outcome import RESULT_FIELDS, Outcome, Source

FIRST = datetime(2026, 11, 29, 10, 0, 0, 123_000, tzinfo=UTC)


def outcome_record(**changes: Any) -> dict[str, Any]:
    outcome = Outcome(
        event_id="evt-1",
        event_type="order.shipped",
        hook_id="sms-ke",
        outcome="delivered",
        attempts=2,
        idempotency_key="msg_2b9f",
        source=Source("dugaa.events", 1, 77),
        first_attempt_at=FIRST.timestamp(),
        completed_at=FIRST.timestamp() + 1.5,
        http_status=202,
        latency_ms=41.25,
        captured={"message_id": "m-9", "cost": 0.8, "ok": True},
    )
    return {**outcome.to_record(), **changes}


@pytest.mark.parametrize("serializer", [JsonResultSerializer(), AvroResultSerializer()])
def test_serializers_are_result_serializers(serializer: ResultSerializer) -> None:
    assert serializer.content_type in ("application/json", "application/avro")
    assert serializer.serialize(outcome_record())


def test_json_result_has_the_contract_fields_in_order_and_iso_times() -> None:
    document = json.loads(JsonResultSerializer().serialize(outcome_record()))
    assert list(document) == list(RESULT_FIELDS)
    assert document["first_attempt_at"] == "2026-11-29T10:00:00.123Z"
    assert document["completed_at"] == "2026-11-29T10:00:01.623Z"
    assert document["captured"] == {"message_id": "m-9", "cost": 0.8, "ok": True}


def test_avro_result_reads_back_with_the_same_values_and_instants() -> None:
    result = read_result(AvroResultSerializer().serialize(outcome_record()))
    assert list(result) == list(RESULT_FIELDS)
    assert result["first_attempt_at"] == FIRST
    assert result["completed_at"] == FIRST + timedelta(seconds=1.5)
    assert result["captured"] == {"message_id": "m-9", "cost": "0.8", "ok": "true"}
    assert (result["outcome"], result["http_status"], result["latency_ms"]) == (
        "delivered",
        202,
        41.25,
    )


def test_dead_lettered_result_with_nulls_round_trips() -> None:
    changes = {"outcome": "dead_lettered", "http_status": None, "latency_ms": None}
    changes |= {"error_kind": "render", "error": "data.total missing", "attempts": 0}
    result = read_result(AvroResultSerializer().serialize(outcome_record(**changes)))
    assert {name: result[name] for name in changes} == changes


def test_registered_serializer_frames_records_readable_through_the_registry() -> None:
    client = SchemaRegistryClient.new_client({"url": "mock://results"})
    serializer = AvroResultSerializer.registered(client)
    value = serializer.serialize(outcome_record())
    assert serializer.schema_id is not None
    assert value[:5] == b"\x00" + serializer.schema_id.to_bytes(4, "big")
    assert read_result(value, RegistrySchemas(client))["event_id"] == "evt-1"
    assert AvroResultSerializer.registered(client).schema_id == serializer.schema_id


@pytest.mark.parametrize("serializer", [JsonResultSerializer(), AvroResultSerializer()])
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"outcome": "retried"}, "outcome"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_results_outside_the_contract_are_refused(
    serializer: ResultSerializer, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        serializer.serialize(outcome_record(**changes))


def test_missing_field_is_named() -> None:
    record = outcome_record()
    del record["hook_id"]
    with pytest.raises(ValueError, match="hook_id"):
        AvroResultSerializer().serialize(record)


@pytest.mark.parametrize(
    "moment",
    [
        FIRST,
        FIRST.replace(tzinfo=None),
        FIRST.astimezone(timezone(timedelta(hours=3))),
        "2026-11-29T13:00:00.123+03:00",
        "2026-11-29T10:00:00.123Z",
        FIRST.timestamp(),
    ],
)
def test_every_way_of_giving_a_time_means_the_same_instant(moment: Any) -> None:
    assert epoch_millis(moment) == 1_795_946_400_123
    assert iso_millis(moment) == "2026-11-29T10:00:00.123Z"


def test_corrupt_avro_result_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        read_result(b"\x02")


def test_result_serializer_follows_the_configuration() -> None:
    assert isinstance(result_serializer("json", {}, topic="r"), JsonResultSerializer)
    assert result_serializer("avro", {}, topic="r") == AvroResultSerializer()
    registered = result_serializer("avro", {"url": "mock://cfg-results"}, topic="r")
    assert isinstance(registered, AvroResultSerializer)
    assert registered.schema_id is not None
    with pytest.raises(ConfigError, match="result_format"):
        result_serializer("xml", {}, topic="r")


def test_the_tenant_round_trips_and_is_absent_when_the_event_had_none() -> None:
    with_tenant = read_result(AvroResultSerializer().serialize(outcome_record(tenant="acme")))
    assert with_tenant is not None
    assert with_tenant["tenant"] == "acme"
    without = read_result(AvroResultSerializer().serialize(outcome_record()))
    assert without is not None
    assert "tenant" not in without


def test_the_hook_tenant_round_trips_and_is_absent_for_a_hook_of_every_tenant() -> None:
    mine = read_result(
        AvroResultSerializer().serialize(outcome_record(tenant="acme", hook_tenant="acme"))
    )
    assert (mine["tenant"], mine["hook_tenant"]) == ("acme", "acme")
    operators = read_result(AvroResultSerializer().serialize(outcome_record(tenant="acme")))
    assert operators["tenant"] == "acme"
    assert "hook_tenant" not in operators


@pytest.mark.parametrize("serializer", [JsonResultSerializer(), AvroResultSerializer()])
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"tenant": "acme", "trace_id": "0af7651916cd43dd8448eb211c80319c"},
        {"tenant": "acme", "hook_tenant": "acme"},
        {
            "outcome": "dead_lettered",
            "http_status": None,
            "latency_ms": None,
            "error_kind": "timeout",
            "error": "no complete answer within 1s",
            "captured": {"n": 2**70, "s": "x"},
        },
    ],
)
def test_an_outcome_is_written_as_its_checked_record_is(
    serializer: ResultSerializer, changes: dict[str, Any]
) -> None:
    fields: dict[str, Any] = {
        "event_id": "evt-1",
        "event_type": "order.created",
        "hook_id": "crm",
        "outcome": "delivered",
        "attempts": 1,
        "idempotency_key": "msg_2f1c",
        "source": Source("orders", 3, 41),
        "first_attempt_at": 1764961860.1234567,
        "completed_at": 1764961861.9999996,
        "http_status": 200,
        "latency_ms": 12.3456,
    }
    outcome = Outcome(**(fields | changes))
    assert serializer.serialize_outcome(outcome) == serializer.serialize(outcome.to_record())
