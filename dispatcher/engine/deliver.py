"""Deliver one pair: request, attempts with local retries, then an end or a hand-off to a tier."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from dispatcher.errors import DeliveryError, Withdrawn
from dispatcher.hooks.masking import mask_text
from dispatcher.http.sender import BREAKER_OPEN, Attempt, HookClient, cut_attempt
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome
from dispatcher.model.pair import Pair
from dispatcher.model.request import Request
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.request import build_request
from dispatcher.pipeline.retry import (
    GiveUp,
    Handoff,
    Result,
    RetryLocal,
    RetryPolicy,
    RetryTier,
    tier_within,
)

if TYPE_CHECKING:  # imported only when tracing is on: OpenTelemetry is never loaded otherwise
    from dispatcher.engine.traced import PairTracer

log = logging.getLogger(__name__)
Send = Callable[[Request, Callable[[], bool]], Awaitable[Attempt]]

AttemptObserver = Callable[[Pair, int, Attempt], None]
"""Told of every HTTP attempt made (the pair, the attempt's number, the attempt); never of a
request the circuit breaker held back. It runs on the delivery loop and must not block.

A `Deliverer`'s `observers` are told of the attempts that ended (hook health and the count of
a pair's attempts go by them); its `cut_observers` (the attempt records' writer, among the
`observers` too) of each attempt cut under way (`cut_attempt`: at a stop's drain deadline, a
revoke, a lock hand-off), as the pair's task is cancelled, numbered after the pair's last."""

Held = Callable[[str], str | None]
"""Why a hook's pairs are held back without a request (it is paused), or None: send them."""


class Deliverer:
    """Runs pairs through their hook's client and the retry policy; never raises for a pair."""

    def __init__(
        self,
        metrics: Metrics,
        tiers: tuple[float, ...],
        local_retries: int,
        clock: Callable[[], float] = time.time,
        observers: Sequence[AttemptObserver] = (),
        held: Held | None = None,
        tracer: PairTracer | None = None,
        cut_observers: Sequence[AttemptObserver] = (),
    ) -> None:
        self.metrics = metrics
        self.tiers = tiers
        self.local_retries = local_retries
        self.clock = clock
        self.observers = tuple(observers)
        self.cut_observers = tuple(cut_observers)
        self.held = held
        self.tracer = tracer  # None: tracing is off, and costs this one test per pair

    def deliver(
        self, pair: Pair, client: HookClient, wanted: Callable[[], bool] = lambda: True
    ) -> Coroutine[Any, Any, Result]:
        """The pair's end: delivered, handed to a retry tier, or dead-lettered. Raises
        `Withdrawn` when `wanted()` turns False before an attempt (its partition left).
        Traced, the pair has a span and its result carries the trace. (Not itself a coroutine:
        the untraced pair awaits the delivery alone, with no frame of tracing around it.)"""
        if self.tracer is None:
            return self._deliver(pair, client, client.send, wanted)
        return self._traced(self.tracer, pair, client, wanted)

    async def _traced(
        self, tracer: PairTracer, pair: Pair, client: HookClient, wanted: Callable[[], bool]
    ) -> Result:
        traced = tracer.begin(pair)
        try:
            result = await self._deliver(
                pair, client, functools.partial(traced.send, client), wanted
            )
        except (Withdrawn, asyncio.CancelledError) as exc:  # no outcome from here
            traced.fail(exc)
            raise
        except Exception as exc:  # a defect: the `internal` dead letter carries this trace
            return traced.end(self._crashed(pair, exc), exc)
        except BaseException as exc:
            traced.fail(exc)
            raise
        return traced.end(result)

    async def _deliver(
        self, pair: Pair, client: HookClient, send: Send, wanted: Callable[[], bool]
    ) -> Result:
        hook = pair.hook
        first = pair.first_attempt_at or self.clock()
        attempts = pair.attempts
        if hook.unusable is not None:
            _still_wanted(wanted)
            return self._end(pair, _unusable(hook.unusable), attempts, first, None)
        if self.held is not None and (why := self.held(hook.id)) is not None:
            _still_wanted(wanted)
            paused = Verdict.failure("paused", why, retryable=False)  # no render, no request
            return self._end(pair, paused, attempts, first, None)
        try:
            request = build_request(hook, pair.event, pair.idempotency_key)
        except DeliveryError as exc:
            _still_wanted(wanted)
            failure = Verdict.failure(exc.kind, mask_text(str(exc), hook), retryable=False)
            return self._end(pair, failure, attempts, first, None)
        if hook.encryption is not None:  # one random nonce used per encryption: count them
            self.metrics.encryptions.labels(hook.id).inc()
        use_tiers = hook.ordering != "key"
        policy: RetryPolicy | None = None  # made at the first failure: most pairs never fail
        local = 0
        metrics = self.metrics.hook(hook.id)
        while True:
            metrics.inflight.inc()
            try:  # (one `try`, with no `finally`: the attempt pays nothing for the cut's case)
                attempt = await send(request, wanted)
            except BaseException as exc:
                metrics.inflight.dec()
                if isinstance(exc, asyncio.CancelledError):
                    self._cut(pair, attempts + 1, exc)
                raise
            metrics.inflight.dec()
            metrics.circuit(client.breaker.state != "closed")
            if not attempt.sent:  # the breaker is open: no attempt was made
                if not use_tiers or not self.tiers:
                    if self.clock() - first >= hook.retry.max_age:
                        return self._end(pair, _expired(attempt.verdict), attempts, first, None)
                    await asyncio.sleep(client.breaker.settings.open_for / 3)  # hold the key
                    continue
                return self._held(pair, attempts, first, attempt.verdict, self.clock())
            attempts += 1
            local += 1
            for observe in self.observers:
                observe(pair, attempts, attempt)
            metrics.attempts(attempt.result_label).inc()
            metrics.duration.observe(attempt.seconds)
            verdict = attempt.verdict
            if verdict.ok:
                metrics.event_to_delivery.observe(max(self.clock() - _entered_at(pair, first), 0.0))
                return self._end(pair, verdict, attempts, first, attempt.seconds)
            log.debug(  # the text is the verdict's: every URL and secret in it masked
                "hook %s attempt %d failed: %s: %s", hook.id, attempts, verdict.kind, verdict.error
            )
            if policy is None:
                policy = RetryPolicy(
                    hook.retry, self._local_attempts(pair), self.tiers, use_tiers=use_tiers
                )
            step = policy.next_step(
                verdict,
                attempts=attempts,
                local_attempts=local,
                tier=pair.tier,
                age=self.clock() - first,
            )
            if isinstance(step, RetryLocal):
                self.metrics.retries_scheduled.labels(hook.id, "local").inc()
                await asyncio.sleep(step.delay)
            elif isinstance(step, RetryTier):
                return self._handoff(pair, step.tier, attempts, first, verdict)
            else:
                return self._end(
                    pair,
                    _expired(verdict) if step == GiveUp(expired=True) else verdict,
                    attempts,
                    first,
                    attempt.seconds,
                )

    def _cut(self, pair: Pair, number: int, exc: asyncio.CancelledError) -> None:
        """Tell the cut observers of attempt `number`, if `exc` cut it under way. Never raises:
        the pair's task must end cancelled, not as a failure (its partition left, or the worker
        stops: no outcome from here)."""
        attempt = cut_attempt(exc)
        if attempt is None:
            return
        for observe in self.cut_observers:
            try:
                observe(pair, number, attempt)
            except Exception:
                log.exception("the record of an attempt cut short could not be written")

    def _local_attempts(self, pair: Pair) -> int:
        """The attempts a pass of `pair` makes in process: `local_retries` more than the first
        on its first pass, one on a pass from a retry tier. Retries in process are for a blip;
        a pair that came back from a tier failed them already, and each tier's pass spending
        them again would spend `max_attempts` within the first tiers (the defaults, 8 attempts
        and 3 in process: dead-lettered 35 s in, never reaching the 5m and 1h tiers)."""
        return 1 if pair.from_tier else self.local_retries + 1

    def held_back(self, pair: Pair, client: HookClient) -> Result | None:
        """The end of a pair whose hook's circuit is open, decided before any work on it: its
        hand-off to the next retry tier (or its expiry), with no request rendered, no task and
        no slot taken (also while half-open with its probes out: a dead hook's probes wait out
        its timeout). None: the pair is to be delivered (`deliver`). Hooks ordered by key keep
        to `deliver`, which holds the key while the circuit is open."""
        hook = pair.hook
        if not self.tiers or hook.ordering == "key" or not client.breaker.refuses():
            return None
        if self.held is not None and self.held(hook.id) is not None:
            return None  # paused: `deliver` ends it as a `paused` dead letter, as any other
        now = self.clock()
        first = pair.first_attempt_at or now
        result = self._held(pair, pair.attempts, first, BREAKER_OPEN, now)
        return self._in_short_span(pair, result)

    def unusable(self, pair: Pair) -> Outcome:
        """The `config` dead letter of a pair whose hook this worker cannot deliver (its
        `unusable` says why), decided before any work on it: no client, no request."""
        first = pair.first_attempt_at or self.clock()
        why = pair.hook.unusable or "the hook cannot be delivered here"
        return self.untried(pair, self._end(pair, _unusable(why), pair.attempts, first, None))

    def holds_at_intake(self, hook: Hook) -> bool:
        """Whether a fresh pair of `hook`, its circuit open, may be handed to the first retry
        tier by the consumer itself, as `held_back` would hand it off here: the hook has retry
        tiers to go to, is neither ordered by key nor paused, its pairs may wait that tier's
        delay (their `max_age` covers it), and tracing is off (a held-back pair has a span of
        its own)."""
        return (
            bool(self.tiers)
            and hook.ordering != "key"
            and tier_within(self.tiers, -1, hook.retry.max_age) is not None
            and self.tracer is None
            and (self.held is None or self.held(hook.id) is None)
        )

    def crashed(self, pair: Pair, exc: Exception) -> Outcome:
        """The dead letter of a pair the dispatcher itself failed on outside `deliver` (kind
        `internal`); traced, with a span of its own, so the letter carries the event's trace.
        (`deliver` ends a pair it fails on so itself, in the pair's span.)"""
        return self.untried(pair, self._crashed(pair, exc), exc)

    def untried(self, pair: Pair, outcome: Outcome, error: Exception | None = None) -> Outcome:
        """`outcome`, the end of a pair that was given no attempt here (a crash outside
        `deliver`; in queue mode, a record handed out for the last time): traced, with a short
        span of its own, so its dead letter carries the event's trace. `error`: what the
        dispatcher failed on, if it did. Safe on any thread (it only starts and ends a span)."""
        ended = self._in_short_span(pair, outcome, error)
        assert isinstance(ended, Outcome)
        return ended

    def _in_short_span(self, pair: Pair, result: Result, error: Exception | None = None) -> Result:
        """`result`, ended in a span of its own when tracing is on (a pair given no attempt)."""
        tracer = self.tracer
        return result if tracer is None else tracer.begin(pair).end(result, error)

    def _crashed(self, pair: Pair, exc: Exception) -> Outcome:
        log.error(
            "delivery of %s to %s failed unexpectedly", pair.event.id, pair.hook.id, exc_info=exc
        )
        message = f"internal error: {type(exc).__name__}: {mask_text(str(exc), pair.hook)}"
        verdict = Verdict.failure("internal", message, retryable=False)
        return self._end(pair, verdict, pair.attempts, pair.first_attempt_at or self.clock(), None)

    def _held(
        self, pair: Pair, attempts: int, first: float, verdict: Verdict, now: float
    ) -> Result:
        """The end of a pair the open circuit holds back (`verdict` says so): its hand-off to
        the next retry tier, or its expiry when that tier would end past its `max_age`."""
        tier = tier_within(self.tiers, pair.tier, pair.hook.retry.max_age - (now - first))
        if tier is None:
            return self._end(pair, _expired(verdict), attempts, first, None)
        return self._handoff(pair, tier, attempts, first, verdict, now)

    def _handoff(
        self,
        pair: Pair,
        tier: int,
        attempts: int,
        first: float,
        verdict: Verdict,
        now: float | None = None,
    ) -> Handoff:
        """The pair to tier `tier`, due after that tier's own delay: never later (a Retry-After
        chose the tier, `RetryPolicy`), so the tier's partitions stay in due-time order and no
        record holds those behind it past their own due time."""
        now = self.clock() if now is None else now
        return Handoff(pair, tier, now + self.tiers[tier], attempts, first, verdict)

    def _end(
        self, pair: Pair, verdict: Verdict, attempts: int, first: float, seconds: float | None
    ) -> Outcome:
        return Outcome(
            event_id=pair.event.id,
            event_type=pair.event.type,
            hook_id=pair.hook.id,
            outcome="delivered" if verdict.ok else "dead_lettered",
            attempts=attempts,
            idempotency_key=pair.idempotency_key,
            source=pair.source,
            first_attempt_at=first,
            completed_at=self.clock(),
            http_status=verdict.status,
            latency_ms=None if seconds is None else seconds * 1000,
            error_kind=verdict.kind,
            error=verdict.error,
            captured=verdict.captured,
            tenant=pair.event.tenant,
            hook_tenant=pair.hook.tenant,
        )


def _still_wanted(wanted: Callable[[], bool]) -> None:
    """Before an end decided without a request: `Withdrawn` unless `wanted()`, as an attempt
    would have raised (its partition left, or in queue mode its record's lock is ending: the
    worker the record goes to ends the pair). Asked on these rare ends, not on the hot path."""
    if not wanted():
        raise Withdrawn("the pair is no longer this worker's to end")


def _entered_at(pair: Pair, first_attempt_at: float) -> float:
    """When the event entered Kafka: its record's timestamp (a retry-tier record's own
    timestamp is when it was handed off, so there the first attempt stands in)."""
    if not pair.from_tier and pair.record.timestamp_ms is not None:
        return pair.record.timestamp_ms / 1000
    return first_attempt_at


def _unusable(why: str) -> Verdict:
    return Verdict.failure("config", f"no request made: {why}", retryable=False)


def _expired(verdict: Verdict) -> Verdict:
    return Verdict(
        ok=False,
        kind="expired",
        retryable=False,
        status=verdict.status,
        error=f"retry budget (max_age) exhausted; last failure: {verdict.error}",
    )
