"""The delivery path's spans, recorded by the SDK's in-memory exporter: a pair's span continues
the trace it is given (or starts one), its attempts' spans are its children and their requests
carry `traceparent`, and results carry the trace."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from dispatcher.engine import deliver as deliver_module
from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.traced import PairTracer, server_of
from dispatcher.http.limits import CircuitBreaker
from dispatcher.http.sender import HookClient
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, Source, idempotency_key
from dispatcher.model.pair import Pair
from dispatcher.pipeline.retry import Handoff, Result
from dispatcher.pipeline.share import redelivered

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The spans finished; local retries run without their waits."""

    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(deliver_module.asyncio, "sleep", no_wait)
    return InMemorySpanExporter()


def hook(**extra: Any) -> Hook:
    raw = {"id": "crm", "events": ["order.*"], "url": "https://u:pw@crm.example.com:8443/in?k=s"}
    return Hook.from_dict({**raw, **extra})


def pair(the_hook: Hook, sent: str | None = None, **state: Any) -> Pair:
    """A pair of `the_hook` for an event whose producer sent traceparent `sent`."""
    event = Event(id="ev-1", type="order.paid", source="/o", data={"n": 1}, tenant="acme",
                  traceparent=sent, tracestate="v=1" if sent else None)  # fmt: skip
    record = Record("events", 0, 5, None, b"{}", ())
    return Pair(record, event, the_hook, Source("events", 0, 5), idempotency_key(event, "crm"),
                **state)  # fmt: skip


def run(
    exporter: InMemorySpanExporter, the_pair: Pair, *statuses: int, traced: bool = True
) -> tuple[Result, list[httpx.Request]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    deliverer = Deliverer(
        Metrics(CollectorRegistry()),
        (30.0,),
        len(statuses) - 1,
        tracer=PairTracer(provider) if traced else None,
    )
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1], json={})

    async def go() -> Result:
        client = HookClient(the_pair.hook, httpx.MockTransport(answer))
        try:
            return await deliverer.deliver(the_pair, client)
        finally:
            await client.aclose()

    return asyncio.run(go()), seen


def spans(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    finished = list(exporter.get_finished_spans())
    (pair_span,) = [s for s in finished if s.kind == SpanKind.CONSUMER]
    return pair_span, [s for s in finished if s.kind == SpanKind.CLIENT]


def test_a_pair_span_continues_the_events_traceparent_and_tracestate(
    exporter: InMemorySpanExporter,
) -> None:
    result, _ = run(exporter, pair(hook(), TRACEPARENT), 200)
    span, _ = spans(exporter)
    assert span.name == "deliver crm"
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT
    assert span.context.trace_state.to_header() == "v=1"
    assert dict(span.attributes or {}) == {
        "dispatcher.hook.id": "crm",
        "dispatcher.event.id": "ev-1",
        "dispatcher.event.type": "order.paid",
        "dispatcher.tenant": "acme",
        "dispatcher.outcome": "delivered",
    }
    assert isinstance(result, Outcome)
    assert result.trace_id == TRACE


@pytest.mark.parametrize(
    "malformed",
    [
        "garbage",
        f"00-{'0' * 32}-{PARENT}-01",  # an all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # an all-zero span id
        f"ff-{TRACE}-{PARENT}-01",  # a forbidden version
        f"00-{TRACE.upper()}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}",
    ],
)
def test_a_malformed_traceparent_is_ignored_and_a_new_trace_begins(
    exporter: InMemorySpanExporter, malformed: str
) -> None:
    result, _ = run(exporter, pair(hook(), malformed), 200)
    span, _ = spans(exporter)
    assert span.parent is None
    assert isinstance(result, Outcome)
    assert result.trace_id == format(span.context.trace_id, "032x") != TRACE


def test_each_attempt_is_a_client_span_whose_traceparent_the_request_carries(
    exporter: InMemorySpanExporter,
) -> None:
    own = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    the_hook = hook(headers={"TraceParent": own, "X-Key": "k"})
    result, seen = run(exporter, pair(the_hook, TRACEPARENT), 503, 200)
    span, attempts = spans(exporter)
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 200]
    for attempt, request in zip(attempts, seen, strict=True):
        assert attempt.parent is not None
        assert attempt.parent.span_id == span.context.span_id
        assert attempt.context.trace_id == span.context.trace_id
        named = f"00-{TRACE}-{attempt.context.span_id:016x}-01"
        assert request.headers.get_list("traceparent") == [named]  # the hook's own replaced
        assert request.headers["tracestate"] == "v=1"
        assert request.headers["x-key"] == "k"
    first, second = attempts
    assert dict(first.attributes or {}) == {
        "http.request.method": "POST",
        "server.address": "crm.example.com",
        "server.port": 8443,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert second.attributes is not None
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes
    assert isinstance(result, Outcome)
    assert result.attempts == 2


def test_a_dead_letter_span_names_its_error_kind(exporter: InMemorySpanExporter) -> None:
    result, _ = run(exporter, pair(hook()), 422)
    span, _ = spans(exporter)
    assert span.attributes is not None
    assert span.attributes["dispatcher.outcome"] == "dead_lettered"
    assert span.attributes["dispatcher.error.kind"] == "http_status"
    assert isinstance(result, Outcome)
    assert result.trace_id == f"{span.context.trace_id:032x}"


def test_a_hand_off_carries_its_span_for_the_next_pass_to_continue(
    exporter: InMemorySpanExporter,
) -> None:
    result, _ = run(exporter, pair(hook(), TRACEPARENT), 503)
    span, _ = spans(exporter)
    assert isinstance(result, Handoff)
    assert result.traceparent == f"00-{TRACE}-{span.context.span_id:016x}-01"
    assert result.tracestate == "v=1"
    assert [e.name for e in span.events] == ["dispatcher.retry.handoff"]
    exporter.clear()

    handed = pair(hook(), TRACEPARENT, tier=0, traceparent=result.traceparent,
                  tracestate=result.tracestate)  # fmt: skip
    again, _ = run(exporter, handed, 200)
    second, _ = spans(exporter)
    assert second.parent is not None
    assert second.parent.span_id == span.context.span_id
    assert isinstance(again, Outcome)
    assert again.trace_id == TRACE


def test_untraced_delivery_adds_no_traceparent_and_no_trace_id(
    exporter: InMemorySpanExporter,
) -> None:
    result, seen = run(exporter, pair(hook(), TRACEPARENT), 200, traced=False)
    assert "traceparent" not in seen[0].headers
    assert isinstance(result, Outcome)
    assert result.trace_id is None
    assert exporter.get_finished_spans() == ()


def traced_deliverer(exporter: InMemorySpanExporter) -> Deliverer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Deliverer(Metrics(CollectorRegistry()), (30.0, 300.0), 0, tracer=PairTracer(provider))


def tripped(the_hook: Hook) -> HookClient:
    """The hook's client with its circuit open (no request is ever made through it)."""
    client = HookClient(the_hook, httpx.MockTransport(lambda _: httpx.Response(200)))
    client.breaker = CircuitBreaker()
    for _ in range(client.breaker.settings.minimum_calls):
        client.breaker.record(False)
    return client


def test_a_pair_held_back_by_the_open_circuit_has_a_short_span_its_hand_off_names(
    exporter: InMemorySpanExporter,
) -> None:
    result = traced_deliverer(exporter).held_back(pair(hook(), TRACEPARENT), tripped(hook()))
    span, attempts = spans(exporter)
    assert attempts == []  # no request
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT
    assert span.attributes is not None
    assert span.attributes["dispatcher.outcome"] == "retry_tier"
    assert [e.name for e in span.events] == ["dispatcher.retry.handoff"]
    assert isinstance(result, Handoff)
    assert result.tier == 0
    assert result.traceparent == f"00-{TRACE}-{span.context.span_id:016x}-01"


def test_a_pair_held_back_past_its_max_age_is_a_dead_letter_carrying_the_trace(
    exporter: InMemorySpanExporter,
) -> None:
    old = pair(hook(), TRACEPARENT, first_attempt_at=1.0, attempts=4)
    result = traced_deliverer(exporter).held_back(old, tripped(hook()))
    span, _ = spans(exporter)
    assert isinstance(result, Outcome)
    assert result.error_kind == "expired"
    assert result.trace_id == TRACE
    assert span.attributes is not None
    assert span.attributes["dispatcher.error.kind"] == "expired"


def test_a_pair_the_dispatcher_fails_on_is_an_internal_dead_letter_in_its_own_span(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def defect(*_: Any) -> None:
        raise RuntimeError("boom at https://u:pw@crm.example.com:8443/in?k=s")

    monkeypatch.setattr(deliver_module, "build_request", defect)
    result, seen = run(exporter, pair(hook(), TRACEPARENT), 200)
    span, attempts = spans(exporter)
    assert seen == []
    assert attempts == []
    assert isinstance(result, Outcome)
    assert result.error_kind == "internal"
    assert result.trace_id == f"{span.context.trace_id:032x}" == TRACE
    assert dict(span.attributes or {}) == {
        "dispatcher.hook.id": "crm",
        "dispatcher.event.id": "ev-1",
        "dispatcher.event.type": "order.paid",
        "dispatcher.tenant": "acme",
        "dispatcher.outcome": "dead_lettered",
        "dispatcher.error.kind": "internal",
        "error.type": "RuntimeError",  # the class only: the message may hold a secret
    }


def test_a_crash_outside_delivery_gets_a_span_of_its_own_when_traced(
    exporter: InMemorySpanExporter,
) -> None:
    failure = RuntimeError("no client")
    the_pair = pair(hook(), TRACEPARENT)
    outcome = traced_deliverer(exporter).crashed(pair(hook(), TRACEPARENT), failure)
    span, _ = spans(exporter)
    assert outcome.error_kind == "internal"
    assert outcome.trace_id == TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT

    untraced = Deliverer(Metrics(CollectorRegistry()), (30.0,), 0)
    exporter.clear()
    assert untraced.crashed(pair(hook(), TRACEPARENT), failure).trace_id is None
    assert untraced.untried(the_pair, redelivered(the_pair, 3, 0.0)).trace_id is None
    held = untraced.held_back(pair(hook(), TRACEPARENT), tripped(hook()))
    assert isinstance(held, Handoff)
    assert held.traceparent is None
    assert exporter.get_finished_spans() == ()


def test_the_server_is_the_urls_host_and_port_only() -> None:
    assert server_of("https://user:pw@h.example.com/p?q=s") == ("h.example.com", 443)
    assert server_of("http://10.0.0.1:8080/x") == ("10.0.0.1", 8080)


def test_a_pair_redelivered_too_often_gets_a_span_of_its_own_when_traced(
    exporter: InMemorySpanExporter,
) -> None:
    """Queue mode's dead letter for a record handed out for the last time: no attempt, but a
    short span in the event's trace, so the letter's `dispatcher.trace.id` finds it."""
    the_pair = pair(hook(), TRACEPARENT)
    outcome = traced_deliverer(exporter).untried(the_pair, redelivered(the_pair, 3, 0.0))
    span, _ = spans(exporter)
    assert outcome.error_kind == "redelivered"
    assert outcome.trace_id == TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT
    assert span.attributes is not None
    assert span.attributes["dispatcher.error.kind"] == "redelivered"
