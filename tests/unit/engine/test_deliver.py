"""Delivering one pair through a hook client over `httpx.MockTransport`: outcomes and hand-offs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from fake_clock import Clock
from prometheus_client import CollectorRegistry

from dispatcher.engine import deliver as deliver_module
from dispatcher.engine.deliver import AttemptObserver, Deliverer
from dispatcher.errors import Withdrawn
from dispatcher.http.limits import CircuitBreaker
from dispatcher.http.sender import Attempt, HookClient
from dispatcher.metrics import Metrics
from dispatcher.model.deadletter import dead_letter_headers
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, Source, idempotency_key
from dispatcher.model.pair import Pair
from dispatcher.pipeline.retry import Handoff

T0 = 1_793_611_800.0
SOURCE = Source("dugaa.events", 3, 41)
EVENT = Event(
    id="ev-1",
    type="order.shipped",
    source="/orders",
    data={"order_id": 7, "customer": {"phone": "+254700000001"}},
)
Handler = Callable[[httpx.Request], httpx.Response]


def make_hook(**extra: Any) -> Hook:
    raw: dict[str, Any] = {
        "id": "sms-ke",
        "events": ["order.shipped"],
        "url": "https://sms.example.com/api/send",
        "fields": [
            {"name": "to", "from": "data.customer.phone", "required": True},
            {"name": "text", "template": "Order {data.order_id} shipped"},
        ],
    }
    raw.update(extra)
    return Hook.from_dict(raw)


def make_pair(hook: Hook, **state: Any) -> Pair:
    rec = Record("dugaa.events", 3, 41, b"key-7", b"{}", ())
    return Pair(rec, EVENT, hook, SOURCE, idempotency_key(EVENT, hook.id), **state)


def replies(*statuses: int | Exception, **headers: str) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with `statuses` in turn (the last one repeats), and its requests."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = statuses[min(len(seen), len(statuses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        body = {"status": "ok", "data": {"id": "m-1"}} if answer < 300 else {"error": "no"}
        return httpx.Response(answer, json=body, headers=headers)

    return handle, seen


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Local retry waits, recorded instead of waited."""
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(deliver_module.asyncio, "sleep", sleep)
    return delays


def deliver(
    hook: Hook,
    handler: Handler,
    *,
    pair: Pair | None = None,
    tiers: tuple[float, ...] = (30.0, 300.0),
    local_retries: int = 3,
    clock: Callable[[], float] | None = None,
    prepare: Callable[[HookClient], None] | None = None,
    observers: Sequence[AttemptObserver] = (),
    held: Callable[[str], str | None] | None = None,
) -> tuple[Outcome | Handoff, Metrics]:
    metrics = Metrics(CollectorRegistry())
    deliverer = Deliverer(
        metrics, tiers, local_retries, clock=clock or Clock(T0), observers=observers, held=held
    )

    async def run() -> Outcome | Handoff:
        client = HookClient(hook, httpx.MockTransport(handler))
        if prepare is not None:
            prepare(client)
        try:
            return await deliverer.deliver(pair or make_pair(hook), client)
        finally:
            await client.aclose()

    return asyncio.run(run()), metrics


def attempts_metric(metrics: Metrics, result: str) -> float | None:
    return metrics.registry.get_sample_value(
        "dispatcher_delivery_attempts_total", {"hook": "sms-ke", "result": result}
    )


def test_a_success_is_delivered_with_status_latency_and_captured_values() -> None:
    hook = make_hook(response={"capture": {"message_id": "data.id"}})
    handler, seen = replies(200)

    result, metrics = deliver(hook, handler)

    assert isinstance(result, Outcome)
    assert result.outcome == "delivered"
    assert result.attempts == 1
    assert result.http_status == 200
    assert result.captured == {"message_id": "m-1"}
    assert result.latency_ms is not None
    assert result.latency_ms >= 0
    assert result.error_kind is None
    assert result.error is None
    assert result.source == SOURCE
    assert result.idempotency_key == idempotency_key(EVENT, "sms-ke")
    assert result.first_attempt_at == T0
    assert result.completed_at == T0
    assert len(seen) == 1
    assert json.loads(seen[0].content) == {"to": "+254700000001", "text": "Order 7 shipped"}
    assert seen[0].url == "https://sms.example.com/api/send"
    assert attempts_metric(metrics, "2xx") == 1


def test_a_permanent_4xx_is_dead_lettered_after_one_attempt(slept: list[float]) -> None:
    handler, seen = replies(422)

    result, metrics = deliver(make_hook(), handler)

    assert isinstance(result, Outcome)
    assert result.outcome == "dead_lettered"
    assert result.attempts == 1
    assert result.http_status == 422
    assert result.error_kind == "http_status"
    assert "422" in (result.error or "")
    assert len(seen) == 1
    assert slept == []
    assert attempts_metric(metrics, "4xx") == 1


def test_retryable_failures_are_retried_locally_until_success(slept: list[float]) -> None:
    handler, seen = replies(503, 503, 200)

    result, metrics = deliver(make_hook(), handler, local_retries=3)

    assert isinstance(result, Outcome)
    assert result.outcome == "delivered"
    assert result.attempts == 3
    assert result.http_status == 200
    assert len(seen) == 3
    assert len(slept) == 2
    assert 0.0 <= slept[0] <= 0.5
    assert 0.0 <= slept[1] <= 1.0
    assert attempts_metric(metrics, "5xx") == 2
    assert attempts_metric(metrics, "2xx") == 1


def test_each_local_retry_is_counted_as_a_retry_of_tier_local(slept: list[float]) -> None:
    handler, _ = replies(503, 503, 200)

    _, metrics = deliver(make_hook(), handler, local_retries=3)

    retries = metrics.registry.get_sample_value(
        "dispatcher_retries_scheduled_total", {"hook": "sms-ke", "tier": "local"}
    )
    assert retries == 2


def test_each_encrypted_body_is_counted_once_however_often_it_is_sent(
    slept: list[float],
) -> None:
    key = "A" * 43  # base64url of 32 bytes
    hook = make_hook(encryption={"algorithm": "A256GCM", "key": key, "key_id": "k1"})
    handler, seen = replies(503, 200)

    _, metrics = deliver(hook, handler, local_retries=3)

    assert len(seen) == 2
    assert (
        metrics.registry.get_sample_value("dispatcher_encryptions_total", {"hook": "sms-ke"}) == 1
    )


def test_every_attempt_carries_the_same_webhook_id(slept: list[float]) -> None:
    handler, seen = replies(503, 500, httpx.ConnectError("refused"), 200)

    result, _ = deliver(make_hook(), handler, local_retries=5)

    assert isinstance(result, Outcome)
    assert result.outcome == "delivered"
    assert len(seen) == 4
    assert {r.headers["webhook-id"] for r in seen} == {idempotency_key(EVENT, "sms-ke")}
    assert {r.content for r in seen} == {seen[0].content}


def test_failures_past_the_local_retries_go_to_the_first_tier(slept: list[float]) -> None:
    handler, seen = replies(503)

    result, _ = deliver(make_hook(), handler, local_retries=2, tiers=(30.0, 300.0))

    assert isinstance(result, Handoff)
    assert result.tier == 0
    assert result.due_at == T0 + 30.0
    assert result.attempts == 3  # the first attempt and two local retries
    assert result.first_attempt_at == T0
    assert result.last.status == 503
    assert result.last.retryable
    assert len(seen) == 3


def test_a_pair_from_a_tier_keeps_counting_and_moves_to_the_next_tier_after_one_attempt(
    slept: list[float],
) -> None:
    # retries in process are the first pass's: a tier's pass spending them again would spend
    # max_attempts within the first tiers (the defaults: dead-lettered 35 s in, never 5m or 1h)
    hook = make_hook()
    pair = make_pair(hook, attempts=4, first_attempt_at=T0 - 40, tier=0)
    handler, seen = replies(httpx.ConnectError("refused"))

    result, _ = deliver(hook, handler, pair=pair, local_retries=3)

    assert isinstance(result, Handoff)
    assert result.tier == 1
    assert result.due_at == T0 + 300.0
    assert result.attempts == 5
    assert result.first_attempt_at == T0 - 40
    assert result.last.kind == "network"
    assert len(seen) == 1
    assert slept == []


def test_with_the_defaults_a_failing_pair_goes_through_every_tier_before_its_dead_letter(
    slept: list[float],
) -> None:
    hook = make_hook()  # max_attempts 8
    handler, _ = replies(503)
    defaults = (30.0, 300.0, 3600.0)
    result, _ = deliver(hook, handler, tiers=defaults)  # 4 attempts in process, then 30s
    tiers = []
    while isinstance(result, Handoff):
        tiers.append(result.tier)
        pair = make_pair(
            hook,
            attempts=result.attempts,
            first_attempt_at=result.first_attempt_at,
            tier=result.tier,
        )
        result, _ = deliver(hook, handler, pair=pair, tiers=defaults)

    assert tiers == [0, 1, 2, 2]  # 30s, 5m, 1h and 1h again: attempts 5, 6, 7, 8
    assert isinstance(result, Outcome)
    assert (result.outcome, result.attempts) == ("dead_lettered", 8)


def retired_pair(hook: Hook, **state: Any) -> Pair:
    """A pair back from a retired tier shorter than every configured one, so counted as tier
    -1 (`retired_tier`); its record was handed off ten seconds ago."""
    handed_off = Record("dugaa.dispatch.retry.10s", 0, 5, b"key-7", b"{}", (), int(T0 - 10) * 1000)
    return Pair(handed_off, EVENT, hook, SOURCE, idempotency_key(EVENT, hook.id), **state)


def test_a_pair_of_a_retired_tier_counted_as_no_tier_is_timed_from_its_first_attempt() -> None:
    """Its record's timestamp is the hand-off's: event-to-delivery runs from the first attempt
    (ten minutes ago), not from the hand-off (ten seconds ago)."""
    hook = make_hook()
    handler, _seen = replies(200)

    result, metrics = deliver(
        hook, handler, pair=retired_pair(hook, attempts=2, first_attempt_at=T0 - 600)
    )

    assert isinstance(result, Outcome)
    assert result.outcome == "delivered"
    waited = metrics.registry.get_sample_value(
        "dispatcher_event_to_delivery_seconds_sum", {"hook": hook.id}
    )
    assert waited == 600


def test_a_pair_of_a_retired_tier_counted_as_no_tier_makes_one_attempt_as_any_tiers_pair(
    slept: list[float],
) -> None:
    """Its retries in process were spent on its first pass: one attempt, then the first
    configured tier (the next after -1)."""
    hook = make_hook()
    handler, seen = replies(httpx.ConnectError("refused"))

    result, _ = deliver(
        hook,
        handler,
        pair=retired_pair(hook, attempts=4, first_attempt_at=T0 - 40),
        local_retries=3,
    )

    assert isinstance(result, Handoff)
    assert (result.tier, result.attempts, result.due_at) == (0, 5, T0 + 30.0)
    assert len(seen) == 1
    assert slept == []


def test_reaching_max_attempts_dead_letters_the_last_failure(slept: list[float]) -> None:
    handler, seen = replies(503)

    result, _ = deliver(make_hook(retry={"max_attempts": 2}), handler, local_retries=5)

    assert isinstance(result, Outcome)
    assert result.outcome == "dead_lettered"
    assert result.attempts == 2
    assert result.error_kind == "http_status"
    assert result.http_status == 503
    assert len(seen) == 2


def test_running_out_of_max_age_dead_letters_as_expired(slept: list[float]) -> None:
    hook = make_hook(retry={"max_age": "1m"})
    pair = make_pair(hook, attempts=5, first_attempt_at=T0 - 61, tier=1)
    handler, seen = replies(503)

    result, _ = deliver(hook, handler, pair=pair)

    assert isinstance(result, Outcome)
    assert result.outcome == "dead_lettered"
    assert result.error_kind == "expired"
    assert result.http_status == 503
    assert "503" in (result.error or "")
    assert result.attempts == 6
    assert len(seen) == 1


def test_a_render_failure_is_dead_lettered_without_any_request() -> None:
    hook = make_hook(fields=[{"name": "to", "from": "data.customer.email", "required": True}])
    handler, seen = replies(200)

    result, metrics = deliver(hook, handler)

    assert isinstance(result, Outcome)
    assert result.outcome == "dead_lettered"
    assert result.error_kind == "render"
    assert "to" in (result.error or "")
    assert result.attempts == 0
    assert result.http_status is None
    assert result.latency_ms is None
    assert seen == []
    assert attempts_metric(metrics, "2xx") is None


def test_an_open_circuit_hands_the_pair_to_a_tier_without_a_request() -> None:
    handler, seen = replies(200)

    def trip(client: HookClient) -> None:
        for _ in range(client.breaker.settings.minimum_calls):
            client.breaker.record(False)

    result, _ = deliver(make_hook(), handler, prepare=trip)

    assert isinstance(result, Handoff)
    assert result.tier == 0
    assert result.attempts == 0
    assert "circuit" in (result.last.error or "")
    assert seen == []


def test_observers_are_told_of_every_attempt_made_in_order(slept: list[float]) -> None:
    handler, _ = replies(503, 200)
    told: list[tuple[str, int, int | None]] = []

    def observe(pair: Pair, number: int, attempt: Attempt) -> None:
        told.append((pair.hook.id, number, attempt.verdict.status))

    deliver(make_hook(), handler, local_retries=3, observers=[observe])

    assert told == [("sms-ke", 1, 503), ("sms-ke", 2, 200)]


def test_observers_are_not_told_of_a_request_the_open_circuit_held_back() -> None:
    handler, _ = replies(200)
    told: list[int] = []

    def trip(client: HookClient) -> None:
        for _ in range(client.breaker.settings.minimum_calls):
            client.breaker.record(False)

    deliver(make_hook(), handler, prepare=trip, observers=[lambda _p, n, _a: told.append(n)])

    assert told == []


def test_a_paused_hooks_pair_is_dead_lettered_at_once_without_render_or_request() -> None:
    handler, seen = replies(200)
    told: list[int] = []
    # a field that cannot render: a paused hook's pair is never rendered
    hook = make_hook(fields=[{"name": "x", "from": "data.absent", "required": True}])

    def held(hook_id: str) -> str | None:
        return f"hook {hook_id} is paused" if hook_id == "sms-ke" else None

    result, metrics = deliver(
        hook, handler, held=held, observers=[lambda _p, n, _a: told.append(n)]
    )

    assert isinstance(result, Outcome)
    assert (result.outcome, result.error_kind, result.attempts) == ("dead_lettered", "paused", 0)
    assert result.error == "hook sms-ke is paused"
    assert (seen, told) == ([], [])
    assert attempts_metric(metrics, "5xx") is None


@pytest.mark.parametrize("cause", ["paused", "render"])
def test_a_pair_no_longer_wanted_gets_no_end_without_a_request_either(cause: str) -> None:
    """Its partition left, or in queue mode its record's lock is ending: the worker its
    record goes to ends it. As an attempt is not started, an end without one is not made."""
    hook = make_hook(fields=[{"name": "x", "from": "data.absent", "required": True}])
    deliverer = Deliverer(
        Metrics(CollectorRegistry()), (30.0,), 3, clock=Clock(T0),
        held=(lambda _hook_id: "paused") if cause == "paused" else None,
    )  # fmt: skip

    async def run() -> None:
        client = HookClient(hook, httpx.MockTransport(replies(200)[0]))
        try:
            await deliverer.deliver(make_pair(hook), client, lambda: False)
        finally:
            await client.aclose()

    with pytest.raises(Withdrawn):
        asyncio.run(run())


def test_a_pair_of_a_hook_not_held_is_delivered() -> None:
    handler, seen = replies(200)
    result, _ = deliver(make_hook(), handler, held=lambda _hook_id: None)
    assert isinstance(result, Outcome)
    assert result.outcome == "delivered"
    assert len(seen) == 1


def test_an_ordered_hook_retries_locally_instead_of_using_a_tier(slept: list[float]) -> None:
    handler, seen = replies(503, 503, 503, 503, 200)

    result, _ = deliver(make_hook(ordering="key"), handler, local_retries=1)

    assert isinstance(result, Outcome)
    assert result.outcome == "delivered"
    assert result.attempts == 5
    assert len(seen) == 5
    assert len(slept) == 4


@pytest.mark.parametrize(("asked", "tier", "due"), [("120", 1, 300.0), ("3600", 2, 3600.0)])
def test_a_retry_after_picks_the_tier_and_the_tier_its_due_time(
    slept: list[float], asked: str, tier: int, due: float
) -> None:
    """Due after the tier's own delay, never later: a tier partition, held until its head is
    due, stays in due-time order, so one long Retry-After holds no other pair behind it."""
    handler, _ = replies(429, **{"Retry-After": asked})

    result, _ = deliver(make_hook(), handler, tiers=(30.0, 300.0, 3600.0))

    assert isinstance(result, Handoff)
    assert (result.tier, result.due_at) == (tier, T0 + due)


def test_local_retries_counts_retries_after_the_first_attempt(slept: list[float]) -> None:
    handler, seen = replies(503)

    deliver(make_hook(), handler, local_retries=2)

    assert len(seen) == 3


def tripped(hook: Hook, clock: Callable[[], float] = time.monotonic) -> HookClient:
    """The hook's client with its circuit open."""
    client = HookClient(hook, httpx.MockTransport(replies(200)[0]))
    client.breaker = CircuitBreaker(clock=clock)
    for _ in range(client.breaker.settings.minimum_calls):
        client.breaker.record(False)
    return client


def test_held_back_hands_a_pair_of_an_open_circuit_to_the_next_tier() -> None:
    hook = make_hook()
    deliverer = Deliverer(Metrics(CollectorRegistry()), (30.0, 300.0), 3, clock=Clock(T0))

    result = deliverer.held_back(
        make_pair(hook, attempts=4, first_attempt_at=T0 - 60, tier=0), tripped(hook)
    )

    assert isinstance(result, Handoff)
    assert (result.tier, result.attempts, result.first_attempt_at) == (1, 4, T0 - 60)
    assert result.due_at == T0 + 300.0
    assert "circuit" in (result.last.error or "")


def test_held_back_lets_a_pair_through_unless_the_circuit_refuses_it() -> None:
    hook = make_hook()
    deliverer = Deliverer(Metrics(CollectorRegistry()), (30.0,), 3, clock=Clock(T0))
    closed = HookClient(hook, httpx.MockTransport(replies(200)[0]))
    now = [0.0]
    half_open = tripped(hook, clock=lambda: now[0])
    now[0] = half_open.breaker.settings.open_for  # open_for later: half-open, probes go out

    assert deliverer.held_back(make_pair(hook), closed) is None
    assert half_open.breaker.state == "half-open"
    for _ in range(half_open.breaker.settings.probes):
        assert deliverer.held_back(make_pair(hook), half_open) is None  # held back: no probe
        assert half_open.breaker.allow()  # the pair's own attempt takes one
    assert isinstance(deliverer.held_back(make_pair(hook), half_open), Handoff)  # all out


def test_held_back_leaves_ordered_hooks_and_tierless_workers_to_deliver() -> None:
    ordered = make_hook(ordering="key")
    metrics = Metrics(CollectorRegistry())

    assert Deliverer(metrics, (30.0,), 3).held_back(make_pair(ordered), tripped(ordered)) is None
    hook = make_hook()
    assert Deliverer(metrics, (), 3).held_back(make_pair(hook), tripped(hook)) is None


def test_a_hook_is_held_at_intake_only_where_held_back_would_hand_off_its_fresh_pairs() -> None:
    metrics = Metrics(CollectorRegistry())
    hook = make_hook()
    paused: dict[str, str] = {}
    deliverer = Deliverer(metrics, (30.0,), 3, held=paused.get)

    assert deliverer.holds_at_intake(hook)
    assert isinstance(deliverer.held_back(make_pair(hook), tripped(hook)), Handoff)
    # each case where held_back does not hand a fresh pair off, the consumer leaves it alone
    ordered = make_hook(ordering="key")
    assert not deliverer.holds_at_intake(ordered)
    assert deliverer.held_back(make_pair(ordered), tripped(ordered)) is None
    assert not Deliverer(metrics, (), 3).holds_at_intake(hook)
    paused[hook.id] = "paused by hand"
    assert not deliverer.holds_at_intake(hook)
    assert deliverer.held_back(make_pair(hook), tripped(hook)) is None
    traced = Deliverer(metrics, (30.0,), 3, tracer=object())  # type: ignore[arg-type]
    assert not traced.holds_at_intake(make_hook())  # each held pair has a span of its own


def test_held_back_dead_letters_a_pair_past_its_max_age_as_expired() -> None:
    hook = make_hook()
    deliverer = Deliverer(Metrics(CollectorRegistry()), (30.0,), 3, clock=Clock(T0))
    old = make_pair(hook, attempts=2, first_attempt_at=T0 - hook.retry.max_age, tier=0)

    result = deliverer.held_back(old, tripped(hook))

    assert isinstance(result, Outcome)
    assert (result.outcome, result.error_kind, result.attempts) == ("dead_lettered", "expired", 2)


def test_held_back_expires_a_pair_whose_next_tier_would_end_past_its_max_age() -> None:
    """As a failed attempt's pair does (`RetryPolicy`): a tier record due past `max_age` would
    be sent past it, should the circuit have closed by then."""
    hook = make_hook(retry={"max_age": "10m"})
    deliverer = Deliverer(Metrics(CollectorRegistry()), (30.0, 300.0), 3, clock=Clock(T0))
    waited = make_pair(hook, attempts=3, first_attempt_at=T0 - 400, tier=0)  # 200 s left

    result = deliverer.held_back(waited, tripped(hook))

    assert isinstance(result, Outcome)
    assert (result.outcome, result.error_kind, result.attempts) == ("dead_lettered", "expired", 3)
    fits = make_pair(hook, attempts=3, first_attempt_at=T0 - 300, tier=0)  # 300 s left
    assert isinstance(deliverer.held_back(fits, tripped(hook)), Handoff)


def test_a_hook_whose_first_tier_outlasts_its_max_age_is_not_held_at_intake() -> None:
    hook = make_hook(retry={"max_age": "20s"})
    deliverer = Deliverer(Metrics(CollectorRegistry()), (30.0,), 3, clock=Clock(T0))

    assert not deliverer.holds_at_intake(hook)
    result = deliverer.held_back(make_pair(hook), tripped(hook))
    assert isinstance(result, Outcome)
    assert (result.error_kind, result.attempts) == ("expired", 0)


def test_a_circuit_opened_between_attempts_expires_a_pair_its_tier_would_outlast(
    slept: list[float],
) -> None:
    clients: list[HookClient] = []
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        breaker = clients[0].breaker
        for _ in range(breaker.settings.minimum_calls):  # other pairs' failures open it
            breaker.record(False)
        return httpx.Response(503)

    result, _ = deliver(
        make_hook(retry={"max_age": "20s"}), handler, tiers=(30.0,), prepare=clients.append
    )

    assert len(seen) == 1  # the local retry met the open circuit
    assert isinstance(result, Outcome)
    assert (result.outcome, result.error_kind, result.attempts) == ("dead_lettered", "expired", 1)


def test_the_circuit_gauge_follows_the_breaker_across_deliveries(slept: list[float]) -> None:
    hook = make_hook()
    metrics = Metrics(CollectorRegistry())
    deliverer = Deliverer(metrics, (30.0,), 0, clock=Clock(T0))
    now, status = [0.0], [503]

    def gauge() -> float | None:
        return metrics.registry.get_sample_value("dispatcher_circuit_open", {"hook": "sms-ke"})

    async def run() -> list[float | None]:
        client = HookClient(hook, httpx.MockTransport(lambda _r: httpx.Response(status[0])))
        client.breaker = CircuitBreaker(clock=lambda: now[0])
        seen = []
        for _ in range(client.breaker.settings.minimum_calls):
            await deliverer.deliver(make_pair(hook), client)
        seen.append(gauge())  # tripped by the last failure
        now[0] += client.breaker.settings.open_for  # half-open: probes go out, and succeed
        status[0] = 200
        for _ in range(client.breaker.settings.probes):
            await deliverer.deliver(make_pair(hook), client)
        seen.append(gauge())
        return seen

    assert asyncio.run(run()) == [1.0, 0.0]


def test_held_back_leaves_a_paused_hook_to_deliver_which_dead_letters_it_as_paused() -> None:
    hook = make_hook()
    deliverer = Deliverer(
        Metrics(CollectorRegistry()), (30.0,), 3, clock=Clock(T0), held=lambda _id: "paused by ops"
    )
    client = tripped(hook)

    assert deliverer.held_back(make_pair(hook), client) is None
    result = asyncio.run(deliverer.deliver(make_pair(hook), client))
    assert isinstance(result, Outcome)
    assert (result.outcome, result.error_kind) == ("dead_lettered", "paused")


def test_a_secret_that_does_not_convert_is_in_no_error_dead_letter_or_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # no number, so a typed field cannot take it; longer than a conversion error quotes, so
    # masking the whole value in a message would miss the clipped piece there
    secret = "acct-Q7zW-9f2c81e0-kx-Lm4P-Rt8s-Vw2y-Zb6d-Hj3n-Tq5c"
    monkeypatch.setenv("DUGAA_TEST_ACCOUNT", secret)
    field = {"name": "account", "value": "${env:DUGAA_TEST_ACCOUNT}", "type": "integer"}
    hook = make_hook(fields=[field])
    handler, seen = replies(200)

    with caplog.at_level(logging.DEBUG):
        result, _ = deliver(hook, handler)

    assert isinstance(result, Outcome)
    assert (result.outcome, result.error_kind, seen) == ("dead_lettered", "render", [])
    assert "account" in (result.error or "")
    letter = dead_letter_headers(result, make_pair(hook).record, failed_at=T0)
    shown = [
        result.error or "",
        json.dumps(result.to_record()),
        *(value.decode("latin-1") for _, value in letter),
        caplog.text,
    ]
    for text in shown:
        for piece in (secret, *secret.split("-")):
            assert piece not in text
