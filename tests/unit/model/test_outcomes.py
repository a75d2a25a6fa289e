"""Outcome records: the result record's fields, dead-letter headers and retry-tier state."""

from __future__ import annotations

import dataclasses
import json

import pytest
from contract_fields import RESULT_FIELDS

from dispatcher.kafka.results import JsonResultSerializer
from dispatcher.model.deadletter import DeadLetter, dead_letter_headers
from dispatcher.model.event import Record
from dispatcher.model.outcome import (
    MAX_ERROR_CHARS,
    Outcome,
    RetryState,
    Source,
    iso,
)

DEAD_LETTER_HEADERS = {
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
    "__connect.errors.topic",
    "__connect.errors.partition",
    "__connect.errors.offset",
    "__connect.errors.exception.class.name",
    "__connect.errors.exception.message",
}
SOURCE = Source("dugaa.events", 3, 41)
T0 = 1_793_611_800.0  # 2026-11-02T09:30:00Z


def outcome(**changes: object) -> Outcome:
    values: dict[str, object] = {
        "event_id": "ev-1",
        "event_type": "order.shipped",
        "hook_id": "sms-ke",
        "outcome": "dead_lettered",
        "attempts": 4,
        "idempotency_key": "msg_abc",
        "source": SOURCE,
        "first_attempt_at": T0,
        "completed_at": T0 + 2.5,
        "http_status": 503,
        "latency_ms": 12.34567,
        "error_kind": "http_status",
        "error": "HTTP 503: unexpected status",
    }
    values.update(changes)
    return Outcome(**values)  # type: ignore[arg-type]


def record(*headers: tuple[str, bytes], topic: str = "dugaa.events") -> Record:
    return Record(topic, 3, 41, b"key-1", b'{"id": "ev-1"}', tuple(headers))


def as_dict(headers: tuple[tuple[str, bytes], ...]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for name, value in headers:
        assert name not in found, f"header {name} twice"
        found[name] = value
    return found


def test_the_result_record_has_exactly_the_contract_fields_in_order() -> None:
    assert list(outcome().to_record()) == RESULT_FIELDS


def test_the_result_record_carries_the_outcome_values() -> None:
    fields = outcome(captured={"message_id": "m-1"}).to_record()

    assert fields == {
        "event_id": "ev-1",
        "event_type": "order.shipped",
        "hook_id": "sms-ke",
        "outcome": "dead_lettered",
        "attempts": 4,
        "http_status": 503,
        "latency_ms": 12.346,
        "error_kind": "http_status",
        "error": "HTTP 503: unexpected status",
        "captured": {"message_id": "m-1"},
        "idempotency_key": "msg_abc",
        "source_topic": "dugaa.events",
        "source_partition": 3,
        "source_offset": 41,
        "first_attempt_at": "2026-11-02T09:30:00.000Z",
        "completed_at": "2026-11-02T09:30:02.500Z",
    }


def test_a_delivered_result_has_null_error_fields_in_json() -> None:
    done = outcome(outcome="delivered", http_status=200, error_kind=None, error=None)

    decoded = json.loads(JsonResultSerializer().serialize(done.to_record()))

    assert list(decoded) == RESULT_FIELDS
    assert decoded["error_kind"] is None
    assert decoded["error"] is None
    assert decoded["captured"] == {}


def test_a_result_without_a_response_has_null_status_and_latency() -> None:
    fields = outcome(http_status=None, latency_ms=None, error_kind="render").to_record()

    assert fields["http_status"] is None
    assert fields["latency_ms"] is None


def test_times_are_iso_utc_with_milliseconds() -> None:
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(T0 + 0.1234) == "2026-11-02T09:30:00.123Z"


def test_a_dead_letter_keeps_the_original_headers_in_order() -> None:
    original = (("ce_id", b"ev-1"), ("traceparent", b"00-abc-01"), ("ce_id", b"dup"))

    headers = dead_letter_headers(outcome(), record(*original), failed_at=T0)

    assert headers[: len(original)] == original


def test_a_dead_letter_carries_every_contract_header() -> None:
    headers = as_dict(dead_letter_headers(outcome(), record(), failed_at=T0 + 3))

    assert set(headers) == DEAD_LETTER_HEADERS
    assert headers["dispatcher.hook.id"] == b"sms-ke"
    assert headers["dispatcher.error.kind"] == b"http_status"
    assert headers["dispatcher.error.message"] == b"HTTP 503: unexpected status"
    assert headers["dispatcher.http.status"] == b"503"
    assert headers["dispatcher.attempts"] == b"4"
    assert headers["dispatcher.idempotency.key"] == b"msg_abc"
    assert headers["dispatcher.source.topic"] == b"dugaa.events"
    assert headers["dispatcher.source.partition"] == b"3"
    assert headers["dispatcher.source.offset"] == b"41"
    assert headers["dispatcher.failed.at"] == b"2026-11-02T09:30:03.000Z"
    assert headers["__connect.errors.topic"] == b"dugaa.events"
    assert headers["__connect.errors.partition"] == b"3"
    assert headers["__connect.errors.offset"] == b"41"
    assert headers["__connect.errors.exception.class.name"].endswith(b"http_status")
    assert headers["__connect.errors.exception.message"] == b"HTTP 503: unexpected status"


def test_a_dead_letter_drops_headers_an_earlier_pass_added() -> None:
    from_tier = record(
        ("ce_type", b"order.shipped"),
        ("dispatcher.hook.id", b"old-hook"),
        ("dispatcher.due.at", b"123.000"),
        ("dispatcher.attempts", b"1"),
        ("__connect.errors.topic", b"old-topic"),
        ("dispatcher-note", b"kept: not our prefix"),
        topic="dugaa.dispatch.retry.30s",
    )

    headers = dead_letter_headers(outcome(), from_tier, failed_at=T0)
    names = [name for name, _ in headers]

    assert as_dict(headers)["dispatcher.hook.id"] == b"sms-ke"
    assert as_dict(headers)["dispatcher.attempts"] == b"4"
    assert as_dict(headers)["__connect.errors.topic"] == b"dugaa.events"
    assert "dispatcher.due.at" not in names
    assert names[:2] == ["ce_type", "dispatcher-note"]


def test_a_dead_letter_without_a_status_has_an_empty_status_header() -> None:
    headers = as_dict(
        dead_letter_headers(outcome(http_status=None, error_kind="timeout"), record(), failed_at=T0)
    )

    assert headers["dispatcher.http.status"] == b""
    assert headers["dispatcher.error.kind"] == b"timeout"


def test_a_long_error_message_is_cut_in_dead_letter_headers() -> None:
    headers = as_dict(dead_letter_headers(outcome(error="x" * 5000), record(), failed_at=T0))

    assert len(headers["dispatcher.error.message"]) == MAX_ERROR_CHARS
    assert len(headers["__connect.errors.exception.message"]) == MAX_ERROR_CHARS


def test_a_replayed_dead_letter_names_what_it_was_replayed_from() -> None:
    replayed = record(("dispatcher.replay.of", b"dugaa.dispatch.dlq/0/7"))

    headers = as_dict(dead_letter_headers(outcome(), replayed, failed_at=T0))

    assert headers["dispatcher.replayed.from"] == b"dugaa.dispatch.dlq/0/7"
    assert "dispatcher.replay.of" not in headers


STATE = RetryState(
    hook_id="sms-ke",
    attempts=3,
    first_attempt_at=T0 + 0.125,
    due_at=T0 + 30.5,
    source=SOURCE,
    idempotency_key="msg_abc",
    last_error_kind="http_status",
    last_error="HTTP 503: unexpected status",
)


def test_retry_state_survives_a_round_trip_through_headers() -> None:
    carried = record(("ce_id", b"ev-1"), *STATE.headers(), topic="dugaa.dispatch.retry.30s")

    assert RetryState.from_record(carried) == STATE


def test_retry_state_headers_are_all_dispatcher_headers() -> None:
    assert all(name.startswith("dispatcher.") for name, _ in STATE.headers())


def without(name: str) -> tuple[tuple[str, bytes], ...]:
    return tuple(h for h in STATE.headers() if h[0] != name)


def replaced(name: str, value: bytes) -> tuple[tuple[str, bytes], ...]:
    return tuple((n, value if n == name else v) for n, v in STATE.headers())


@pytest.mark.parametrize(
    "headers",
    [
        (),
        without("dispatcher.attempts"),
        without("dispatcher.due.at"),
        without("dispatcher.first.attempt.at"),
        without("dispatcher.source.partition"),
        without("dispatcher.source.offset"),
        replaced("dispatcher.attempts", b"three"),
        replaced("dispatcher.due.at", b"soon"),
        replaced("dispatcher.source.offset", b"\xff\xfe"),
    ],
    ids=[
        "none",
        "no-attempts",
        "no-due-at",
        "no-first-attempt",
        "no-partition",
        "no-offset",
        "attempts-not-a-number",
        "due-at-not-a-number",
        "offset-not-utf8",
    ],
)
def test_retry_state_is_none_when_its_headers_are_missing_or_broken(
    headers: tuple[tuple[str, bytes], ...],
) -> None:
    assert RetryState.from_record(record(*headers)) is None


@pytest.mark.parametrize("name", ["dispatcher.hook.id", "dispatcher.idempotency.key"])
def test_retry_state_is_none_without_a_hook_id_or_idempotency_key(name: str) -> None:
    assert RetryState.from_record(record(*without(name))) is None


def test_the_tenant_follows_the_contract_fields_only_when_the_event_has_one() -> None:
    assert list(outcome(tenant="acme").to_record()) == [*RESULT_FIELDS, "tenant"]
    assert outcome(tenant="acme").to_record()["tenant"] == "acme"
    assert "tenant" not in outcome().to_record()
    document = json.loads(JsonResultSerializer().serialize(outcome(tenant="acme").to_record()))
    assert document["tenant"] == "acme"


def test_a_dead_letter_carries_the_tenant_header_when_the_event_has_one() -> None:
    with_tenant = as_dict(dead_letter_headers(outcome(tenant="acme"), record(), failed_at=T0))
    assert with_tenant["dispatcher.tenant"] == b"acme"
    without = as_dict(dead_letter_headers(outcome(), record(), failed_at=T0))
    assert "dispatcher.tenant" not in without


def test_a_result_names_the_tenant_of_its_hook_only_when_the_hook_has_one() -> None:
    mine = outcome(tenant="acme", hook_tenant="acme").to_record()
    assert list(mine) == [*RESULT_FIELDS, "tenant", "hook_tenant"]
    assert (mine["tenant"], mine["hook_tenant"]) == ("acme", "acme")
    document = json.loads(JsonResultSerializer().serialize(mine))
    assert document["hook_tenant"] == "acme"
    assert "hook_tenant" not in outcome(tenant="acme").to_record()  # a hook of every tenant


def test_a_dead_letter_carries_the_hook_tenant_header_when_the_hook_has_one() -> None:
    mine = dead_letter_headers(outcome(tenant="acme", hook_tenant="acme"), record(), failed_at=T0)
    assert as_dict(mine)["dispatcher.hook.tenant"] == b"acme"
    assert DeadLetter.from_record(record(*mine)).hook_tenant == "acme"
    operators = dead_letter_headers(outcome(tenant="acme"), record(), failed_at=T0)
    assert "dispatcher.hook.tenant" not in as_dict(operators)
    assert DeadLetter.from_record(record(*operators)).hook_tenant is None


def test_a_letter_failing_again_names_the_tenant_of_its_hook_now() -> None:
    """A replayed letter keeps its headers; failing again, its new letter names the hook's
    tenant as it is now, never the one the letter it came from named."""
    before = dead_letter_headers(outcome(tenant="acme"), record(), failed_at=T0)
    replayed = DeadLetter.from_record(record(*before)).for_replay()
    again = as_dict(
        dead_letter_headers(outcome(tenant="acme", hook_tenant="acme"), replayed, failed_at=T0)
    )
    assert again["dispatcher.hook.tenant"] == b"acme"
    moved_away = dead_letter_headers(outcome(tenant="acme"), record(*again.items()), failed_at=T0)
    assert "dispatcher.hook.tenant" not in as_dict(moved_away)


def test_a_hooks_tenant_survives_a_round_trip_through_a_tier_records_headers() -> None:
    state = dataclasses.replace(STATE, hook_tenant="acme")
    carried = record(*state.headers(), topic="dugaa.dispatch.retry.30s")

    assert RetryState.from_record(carried) == state
    assert ("dispatcher.hook.tenant", b"acme") in state.headers()
