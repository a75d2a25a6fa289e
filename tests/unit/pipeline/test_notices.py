"""Operational events: a decision on a hook's health as a CloudEvent with a deterministic id."""

from __future__ import annotations

from dispatcher.model.event import Record
from dispatcher.model.health import Decision
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.notices import CONTENT_TYPE, notice, notice_value


def test_the_same_decision_made_twice_is_the_same_event_id() -> None:
    one = notice(Decision("erp", "paused", 100.0, 200.0, last_error="503"))
    two = notice(Decision("erp", "paused", 100.0, 201.5, last_error="timeout"))
    assert one is not None
    assert two is not None
    assert one["id"] == two["id"]
    other = notice(Decision("erp", "failing", 100.0, 200.0))
    later = notice(Decision("erp", "paused", 500.0, 600.0))
    assert other is not None
    assert later is not None
    assert len({one["id"], other["id"], later["id"]}) == 3


def test_a_notice_names_the_hook_tenant_since_reason_and_last_error() -> None:
    event = notice(Decision("erp", "paused", 0.0, 30.0, "auto", "unexpected status 503", "acme"))
    assert event is not None
    assert (event["type"], event["subject"], event["tenant"]) == (
        "dispatcher.hook.paused", "erp", "acme"
    )  # fmt: skip
    assert event["data"] == {
        "hook": "erp",
        "tenant": "acme",
        "state": "paused",
        "since": "1970-01-01T00:00:00.000Z",
        "at": "1970-01-01T00:00:30.000Z",
        "reason": "auto",
        "last_error": "unexpected status 503",
    }


def test_a_notice_is_an_event_the_workers_decode_like_any_other() -> None:
    event = notice(Decision("erp", "resumed", 0.0, 30.0, "manual"))
    assert event is not None
    record = Record("ops", 0, 0, b"erp", notice_value(event), (("content-type", CONTENT_TYPE),))
    decoded = decode(record)
    assert (decoded.id, decoded.type, decoded.tenant) == (
        event["id"],
        "dispatcher.hook.resumed",
        None,
    )


def test_a_hook_healthy_again_is_no_event() -> None:
    assert notice(Decision("erp", "healthy", 0.0, 30.0)) is None
