"""The unit of work: one event bound for one hook, and where it was consumed from."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Source
from dispatcher.model.values import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class Pair:
    """An (event, hook) pair. `record` is the consumed record (input or retry tier; out of a
    tier bundle, the event's record as the bundle holds it, at the bundle's position);
    `source` is where the event first entered; `tier` the retry tier it came from (-1: none);
    `traceparent`/`tracestate` the trace context its retry-tier record carries (the span that
    handed it off), which it continues rather than the event's; `bundle` the tier bundle
    (model/bundle.py) it came in, if it did: its completion counts for that record."""

    record: Record
    event: Event
    hook: Hook
    source: Source
    idempotency_key: str
    attempts: int = 0
    first_attempt_at: float | None = None
    tier: int = -1
    traceparent: str | None = None
    tracestate: str | None = None
    bundle: Record | None = None

    @property
    def trace_context(self) -> tuple[str | None, str | None]:
        """The (traceparent, tracestate) this pair's span continues: a hand-off's, else the
        event's."""
        if self.traceparent is not None:
            return self.traceparent, self.tracestate
        return self.event.traceparent, self.event.tracestate

    @property
    def from_tier(self) -> bool:
        """Whether the pair came back from a retry tier: such a pair carries its first
        attempt's time. Its `tier` says which tier only as the configured ones stand: a
        retired tier shorter than all of them counts as -1 (`pipeline/retry.retired_tier`)."""
        return self.first_attempt_at is not None

    @property
    def ordering_key(self) -> tuple[str, bytes] | None:
        """The (hook, event key) this pair must keep order within, if the hook orders by key."""
        if self.hook.ordering != "key" or self.record.key is None:
            return None
        return (self.hook.id, self.record.key)
