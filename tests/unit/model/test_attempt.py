"""The attempt record's JSON form: fields in contract order, read back as written, and
anything else read as no record at all."""

from __future__ import annotations

import json

import pytest

from dispatcher.model.attempt import FIELDS, AttemptRecord
from dispatcher.model.outcome import Source

RECORD = AttemptRecord(
    event_id="ev-1",
    hook_id="erp",
    attempt=2,
    idempotency_key="msg_abc",
    http_status=503,
    latency_ms=12.34567,
    error_kind="http_status",
    error="HTTP 503: unexpected status",
    response_excerpt='{"status":"busy"}',
    at=1_793_611_800.25,
    tenant="acme",
    source=Source("dugaa.events", 3, 41),
    hook_tenant="acme",
)


def test_an_attempt_is_one_json_object_with_the_contract_fields_in_order() -> None:
    document = json.loads(RECORD.to_json())

    assert tuple(document) == FIELDS
    assert document["at"] == "2026-11-02T09:30:00.250Z"
    assert document["latency_ms"] == 12.346
    assert document["http_status"] == 503
    assert document["response_excerpt"] == '{"status":"busy"}'
    assert (document["source_topic"], document["source_partition"]) == ("dugaa.events", 3)


def test_an_attempt_reads_back_as_it_was_written() -> None:
    back = AttemptRecord.from_json(RECORD.to_json())

    assert back is not None
    assert back == AttemptRecord(**{**_fields(RECORD), "latency_ms": 12.346})


def test_a_network_failure_has_no_status_and_no_excerpt() -> None:
    failed = AttemptRecord("ev-2", "erp", 1, "msg_x", None, 5000.0, "timeout", "no answer",
                           None, 1_793_611_800.0)  # fmt: skip

    back = AttemptRecord.from_json(failed.to_json())

    assert back == failed
    assert json.loads(failed.to_json())["tenant"] is None


def test_an_attempt_names_the_tenant_of_its_hook_beside_the_event_tenant() -> None:
    document = json.loads(RECORD.to_json())
    assert (document["tenant"], document["hook_tenant"]) == ("acme", "acme")
    of_every_tenant = AttemptRecord("ev-3", "audit", 1, "msg_y", 400, 3.0, "http_status", "400",
                                    "no", 1_793_611_800.0, "acme")  # fmt: skip
    assert json.loads(of_every_tenant.to_json())["hook_tenant"] is None
    earlier = {**json.loads(of_every_tenant.to_json())}
    del earlier["hook_tenant"]  # a record of a version before it
    back = AttemptRecord.from_json(json.dumps(earlier).encode())
    assert back is not None
    assert (back.tenant, back.hook_tenant) == ("acme", None)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"[1, 2]",
        b'{"event_id": "e"}',
        b'{"event_id": 1, "hook_id": "h", "attempt": 1, "at": "2026-11-02T08:10:00Z"}',
        b'{"event_id": "e", "hook_id": "h", "attempt": "x", "at": "2026-11-02T08:10:00Z"}',
        b'{"event_id": "e", "hook_id": "h", "attempt": 1, "at": "yesterday"}',
    ],
)
def test_a_value_that_is_not_an_attempt_record_reads_as_none(value: bytes | None) -> None:
    assert AttemptRecord.from_json(value) is None


def _fields(record: AttemptRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in AttemptRecord.__slots__}
