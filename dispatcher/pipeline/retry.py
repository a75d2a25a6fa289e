"""The retry policy: what happens after a failed attempt. Pure: time and randomness come in."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher.model.hook import RetrySpec
from dispatcher.model.outcome import Outcome
from dispatcher.model.pair import Pair
from dispatcher.model.values import quick_init
from dispatcher.pipeline.judge import Verdict

BASE_DELAY = 0.5
MAX_LOCAL_DELAY = 10.0
MAX_HELD_DELAY = 60.0


def backoff(
    attempt: int,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_LOCAL_DELAY,
    rand: Callable[[], float] = random.random,
) -> float:
    """Full-jitter exponential backoff before attempt `attempt + 1` (attempt counts from 1)."""
    return float(rand() * min(cap, base * 2.0 ** max(attempt - 1, 0)))


@dataclass(frozen=True, slots=True)
class RetryLocal:
    """Wait `delay` seconds in process, then attempt again."""

    delay: float


@dataclass(frozen=True, slots=True)
class RetryTier:
    """Hand the pair to delayed retry tier `tier` (an index into the configured tiers)."""

    tier: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Dead-letter the pair; `expired` when it ran out of time rather than failed for good."""

    expired: bool = False


Step = RetryLocal | RetryTier | GiveUp


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Local attempts first, then the delayed tiers, within the hook's attempt and age budget."""

    spec: RetrySpec
    local_attempts: int
    tiers: tuple[float, ...]
    use_tiers: bool = True

    def next_step(
        self,
        verdict: Verdict,
        *,
        attempts: int,
        local_attempts: int,
        tier: int,
        age: float,
        rand: Callable[[], float] = random.random,
    ) -> Step:
        """The step after a failed attempt.

        `attempts` counts every attempt so far, `local_attempts` those in this process run,
        `tier` is the tier the pair came from (-1: straight from the input topic), `age` the
        seconds since the first attempt.
        """
        if not verdict.retryable or attempts >= self.spec.max_attempts:
            return GiveUp()
        if age >= self.spec.max_age:
            return GiveUp(expired=True)
        wait = backoff(local_attempts, rand=rand)
        if verdict.retry_after is not None:
            wait = max(wait, verdict.retry_after)
        if local_attempts < self.local_attempts and wait <= MAX_LOCAL_DELAY:
            return RetryLocal(wait)
        if not self.use_tiers or not self.tiers:
            # No tier may take it (ordered hooks keep their key's order): wait here, longer.
            wait = max(backoff(local_attempts, cap=MAX_HELD_DELAY, rand=rand), wait)
            return RetryLocal(min(wait, self.spec.max_age - age))
        next_tier = min(tier + 1, len(self.tiers) - 1)
        if age + self.tiers[next_tier] > self.spec.max_age:
            return GiveUp(expired=True)
        return RetryTier(next_tier)


@quick_init
@dataclass(frozen=True, slots=True)
class Handoff:
    """The pair goes to retry tier `tier`, due at `due_at`, after `attempts` attempts;
    `traceparent`/`tracestate` name the traced pass that handed it off (the next continues it)."""

    pair: Pair
    tier: int
    due_at: float
    attempts: int
    first_attempt_at: float
    last: Verdict
    traceparent: str | None = None
    tracestate: str | None = None


Result = Outcome | Handoff
