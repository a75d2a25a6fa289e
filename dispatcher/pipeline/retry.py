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
            # never past `max_age`: with less of it left than the wait, the attempt is made as
            # it ends (asked sooner than a `Retry-After` said, as a tier within the budget is)
            return RetryLocal(min(wait, self.spec.max_age - age))
        if not self.use_tiers or not self.tiers:
            # No tier may take it (ordered hooks keep their key's order): wait here, longer.
            wait = max(backoff(local_attempts, cap=MAX_HELD_DELAY, rand=rand), wait)
            return RetryLocal(min(wait, self.spec.max_age - age))
        chosen = self._tier_for(tier, verdict.retry_after or 0.0, self.spec.max_age - age)
        return GiveUp(expired=True) if chosen is None else RetryTier(chosen)

    def _tier_for(self, tier: int, wait: float, budget: float) -> int | None:
        """The tier after `tier` for a pair that must wait at least `wait` seconds (its
        `Retry-After`) and has `budget` seconds of `max_age` left; None: even the next tier
        would end past the budget (the pair expires now, as it always has).

        A tier record is due after its tier's own delay, never later, so that every tier
        partition stays in due-time order and its head, which holds the partition, is the
        record due first. A Retry-After longer than the next tier's delay therefore moves the
        pair on to the first later tier whose delay covers it, skipping the shorter ones; where
        none does, or where the one that does would end past `max_age`, the pair goes to the
        longest tier within its budget and the receiver is asked again sooner than it said (a
        429 again is one more attempt). Skipping spends no attempts and moves no deadline:
        retries end at `max_attempts` or `max_age` exactly as without a Retry-After, and a
        pair never returns to a shorter tier (a later failure goes on from the tier it is in).
        """
        chosen = tier_within(self.tiers, tier, budget)
        if chosen is None:
            return None
        for later in range(chosen + 1, len(self.tiers)):
            if self.tiers[chosen] >= wait or self.tiers[later] > budget:
                break
            chosen = later
        return chosen


def next_tier(tiers: tuple[float, ...], tier: int) -> int:
    """The tier after `tier` (-1: the input topic); the last one is kept once reached."""
    return min(tier + 1, len(tiers) - 1)


def retired_tier(tiers: tuple[float, ...], delay: float) -> int:
    """The tier a pair from a retired tier (one of `delay` seconds that `topics.retry` no
    longer names) counts as coming from: the longest configured tier shorter than it, -1
    when none is (as a pair fresh from the input topic).

    So `next_tier` (and `tier_within`, and a Retry-After's skipping) sends it on, after
    another failure, to the first configured tier at least as long as the one it waited in,
    else to the last: its waits keep growing, as they would have in the old tiers, and do not
    start again from the shortest. A retired tier's delay is never a configured one's (their
    topic would be the same), so "at least as long" is "longer"."""
    return sum(1 for configured in tiers if configured < delay) - 1


def tier_within(tiers: tuple[float, ...], tier: int, budget: float) -> int | None:
    """The tier after `tier`, when its delay ends within `budget` (the seconds left of the
    pair's `max_age`); None: the pair expires now. A record due past `max_age` would be sent
    again past it (were the hook's circuit closed by then), so a failed attempt's pair and a
    pair the open circuit holds back end alike: never in a tier that outlasts their budget."""
    chosen = next_tier(tiers, tier)
    return chosen if tiers[chosen] <= budget else None


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
