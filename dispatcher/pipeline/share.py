"""Queue mode's two ends of a pair that need no request: the last allowed delivery of a record,
and a pair that would outlast its record's acquisition lock. Pure: time comes in."""

from __future__ import annotations

from dispatcher.model.outcome import Outcome
from dispatcher.model.pair import Pair
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.retry import Handoff


def on_last_delivery(delivery_count: int | None, limit: int) -> bool:
    """True for a record the broker hands out for the last time: after it, the broker would
    archive the record unseen, so it is dead-lettered now instead of attempted."""
    return delivery_count is not None and delivery_count >= limit


def redelivered(pair: Pair, delivery_count: int, now: float) -> Outcome:
    """The dead letter of a pair whose record came back `delivery_count` times (error kind
    `redelivered`): workers died or hung holding it, so no request is made again."""
    return Outcome(
        event_id=pair.event.id,
        event_type=pair.event.type,
        hook_id=pair.hook.id,
        outcome="dead_lettered",
        attempts=pair.attempts,
        idempotency_key=pair.idempotency_key,
        source=pair.source,
        first_attempt_at=pair.first_attempt_at or now,
        completed_at=now,
        error_kind="redelivered",
        error=(
            f"the record was delivered to workers {delivery_count} times, the share group's"
            " limit, without being acknowledged"
        ),
        tenant=pair.event.tenant,
        hook_tenant=pair.hook.tenant,
    )


def lock_handoff(
    pair: Pair, tiers: tuple[float, ...], now: float, made: tuple[int, float] | None = None
) -> Handoff:
    """The hand-off to the first retry tier of a pair still running when its record's lock is
    about to expire (this client cannot renew a lock). `made`: the attempts the cut pass made
    and when the first began, which the pair's count and age carry on from (its next attempt
    is the one after them, and `max_age` runs from its first). It carries the trace context
    the cut pass continued, so the next pass stays in the pair's trace (a sibling of the cut
    pass)."""
    verdict = Verdict.failure(
        "timeout",
        "the delivery would outlast the record's acquisition lock",
        retryable=True,
    )
    attempts, first = made or (pair.attempts, pair.first_attempt_at or now)
    traceparent, tracestate = pair.trace_context
    return Handoff(pair, 0, now + tiers[0], attempts, first, verdict, traceparent, tracestate)
