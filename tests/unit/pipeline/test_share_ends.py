"""Queue mode's ends without a request: the last allowed delivery, and a lock about to expire."""

from __future__ import annotations

from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Source
from dispatcher.model.pair import Pair
from dispatcher.pipeline.retry import Handoff
from dispatcher.pipeline.share import lock_handoff, on_last_delivery, redelivered

HOOK = Hook.from_dict({"id": "erp", "events": ["order.paid"], "url": "https://erp.example.com/"})
RECORD = Record("events", 0, 41, b"k", b"{}", ())
PAIR = Pair(RECORD, Event("e-1", "order.paid", "/s"), HOOK, Source("events", 0, 41), "msg_1")


def test_the_last_allowed_delivery_is_the_one_equal_to_the_limit() -> None:
    assert not on_last_delivery(1, 5)
    assert not on_last_delivery(4, 5)
    assert on_last_delivery(5, 5)
    assert on_last_delivery(6, 5)  # the limit was lowered meanwhile
    assert not on_last_delivery(None, 5)  # a client that does not say: deliver


def test_a_redelivered_dead_letter_names_the_count_and_keeps_the_webhook_id() -> None:
    outcome = redelivered(PAIR, 5, now=1000.0)

    assert outcome.outcome == "dead_lettered"
    assert outcome.error_kind == "redelivered"
    assert "5 times" in (outcome.error or "")
    assert outcome.idempotency_key == "msg_1"
    assert (outcome.attempts, outcome.http_status) == (0, None)  # no request was made
    assert outcome.source == Source("events", 0, 41)


def test_a_redelivered_dead_letter_names_the_event_tenant_and_the_hook_tenant() -> None:
    acme = Hook.from_dict(
        {"id": "erp", "events": ["order.paid"], "url": "https://erp.example.com/", "tenant": "acme"}
    )
    event = Event("e-1", "order.paid", "/s", tenant="acme")
    pair = Pair(RECORD, event, acme, Source("events", 0, 41), "msg_1")

    outcome = redelivered(pair, 5, now=1000.0)

    assert (outcome.tenant, outcome.hook_tenant) == ("acme", "acme")
    assert redelivered(PAIR, 5, now=1000.0).hook_tenant is None  # a hook of every tenant


def test_a_pair_outlasting_its_lock_goes_to_the_first_tier_when_it_is_due() -> None:
    handoff = lock_handoff(PAIR, (30.0, 300.0), now=1000.0)

    assert isinstance(handoff, Handoff)
    assert (handoff.tier, handoff.due_at, handoff.first_attempt_at) == (0, 1030.0, 1000.0)
    assert handoff.last.retryable
    assert handoff.last.kind == "timeout"
    assert (handoff.traceparent, handoff.tracestate) == (None, None)  # no trace: none made up


def test_a_lock_hand_off_carries_on_the_attempts_the_cut_pass_made() -> None:
    handoff = lock_handoff(PAIR, (30.0,), now=1000.0, made=(2, 990.0))

    assert (handoff.attempts, handoff.first_attempt_at, handoff.due_at) == (2, 990.0, 1030.0)


def test_a_lock_hand_off_keeps_the_trace_the_cut_pass_continued() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = Event("e-1", "order.paid", "/s", traceparent=traceparent, tracestate="v=1")
    first = Pair(RECORD, event, HOOK, Source("events", 0, 41), "msg_1")
    handoff = lock_handoff(first, (30.0,), now=1000.0)
    assert (handoff.traceparent, handoff.tracestate) == (traceparent, "v=1")

    handed = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
    again = Pair(RECORD, event, HOOK, Source("events", 0, 41), "msg_1", traceparent=handed)
    handoff = lock_handoff(again, (30.0,), now=1000.0)
    assert (handoff.traceparent, handoff.tracestate) == (handed, None)  # the tier record's own
