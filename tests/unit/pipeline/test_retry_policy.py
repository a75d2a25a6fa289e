"""The retry policy: backoff with full jitter, Retry-After, local retries, tiers and budgets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dispatcher.model.hook import RetrySpec
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.retry import (
    MAX_HELD_DELAY,
    MAX_LOCAL_DELAY,
    GiveUp,
    RetryLocal,
    RetryPolicy,
    RetryTier,
    backoff,
    next_tier,
    retired_tier,
)

TIERS = (30.0, 300.0, 3600.0)
RETRYABLE = Verdict.failure("http_status", "HTTP 503", retryable=True, status=503)
PERMANENT = Verdict.failure("http_status", "HTTP 422", retryable=False, status=422)


def top() -> float:
    return 1.0


def bottom() -> float:
    return 0.0


def policy(
    max_attempts: int = 8, max_age: float = 86400.0, local: int = 3, **extra: object
) -> RetryPolicy:
    return RetryPolicy(RetrySpec(max_attempts, max_age), local, TIERS, **extra)  # type: ignore[arg-type]


def step(p: RetryPolicy, verdict: Verdict = RETRYABLE, **state: float) -> object:
    args = {"attempts": 1, "local_attempts": 1, "tier": -1, "age": 0.0, "rand": top}
    args.update(state)
    return p.next_step(verdict, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 10.0), (40, 10.0)],
)
def test_backoff_is_full_jitter_up_to_a_doubling_capped_ceiling(
    attempt: int, ceiling: float
) -> None:
    assert backoff(attempt, rand=top) == ceiling
    assert backoff(attempt, rand=bottom) == 0.0
    assert backoff(attempt, rand=lambda: 0.5) == ceiling / 2


def test_backoff_stays_within_its_bounds_with_real_randomness() -> None:
    delays = [backoff(4) for _ in range(200)]

    assert all(0.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


def test_backoff_honours_base_and_cap() -> None:
    assert backoff(3, base=1.0, cap=100.0, rand=top) == 4.0
    assert backoff(30, base=1.0, cap=60.0, rand=top) == 60.0


def test_a_retryable_failure_is_retried_locally_first_with_backoff() -> None:
    assert step(policy(), local_attempts=1) == RetryLocal(0.5)
    assert step(policy(), local_attempts=2) == RetryLocal(1.0)


def test_retry_after_lengthens_the_local_wait() -> None:
    verdict = Verdict(
        ok=False, kind="http_status", retryable=True, status=429, error="x", retry_after=7.0
    )

    assert step(policy(), verdict) == RetryLocal(7.0)


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    verdict = Verdict(ok=False, kind="http_status", retryable=True, status=429, retry_after=0.1)

    assert step(policy(), verdict, local_attempts=2) == RetryLocal(1.0)


def test_retry_after_longer_than_a_local_wait_goes_to_a_tier() -> None:
    verdict = Verdict(
        ok=False, kind="http_status", retryable=True, status=429, retry_after=MAX_LOCAL_DELAY + 1
    )

    assert step(policy(), verdict) == RetryTier(0)


def asks(seconds: float) -> Verdict:
    """A 429 whose `Retry-After` asks for `seconds`."""
    return Verdict(ok=False, kind="http_status", retryable=True, status=429, retry_after=seconds)


@pytest.mark.parametrize(
    ("tier", "seconds", "expected"),
    [(-1, 30.0, 0), (-1, 31.0, 1), (-1, 300.0, 1), (-1, 3600.0, 2), (0, 3600.0, 2), (1, 10.0, 2)],
)
def test_a_retry_after_past_the_next_tier_skips_to_the_first_tier_that_covers_it(
    tier: int, seconds: float, expected: int
) -> None:
    state = {"attempts": 4, "local_attempts": 4, "tier": tier}

    assert step(policy(), asks(seconds), **state) == RetryTier(expected)


def test_a_retry_after_past_the_last_tier_goes_to_the_last_tier() -> None:
    p = RetryPolicy(RetrySpec(8, 86400.0), 3, (30.0, 300.0))

    assert step(p, asks(3600.0), attempts=4, local_attempts=4) == RetryTier(1)


def test_a_retry_after_past_the_budget_takes_the_longest_tier_within_it() -> None:
    """The receiver is asked sooner than it said rather than the pair expiring early: it
    expires only where the next tier itself would end past `max_age`, as without Retry-After."""
    p = policy(max_age=1000.0)

    assert step(p, asks(3600.0), attempts=4, local_attempts=4, age=600.0) == RetryTier(1)
    assert step(p, asks(3600.0), attempts=4, local_attempts=4, age=800.0) == RetryTier(0)
    assert step(p, asks(3600.0), attempts=4, local_attempts=4, age=971.0) == GiveUp(expired=True)


def test_skipping_tiers_leaves_the_attempt_budget_alone() -> None:
    p = policy(max_attempts=8)

    assert step(p, asks(3600.0), attempts=4, local_attempts=4) == RetryTier(2)
    assert step(p, attempts=7, local_attempts=3, tier=2) == RetryTier(2)  # no Retry-After now
    assert step(p, attempts=8, local_attempts=4, tier=2) == GiveUp(expired=False)


def test_after_the_local_attempts_the_pair_goes_to_the_next_tier() -> None:
    p = policy(local=3)

    assert step(p, attempts=3, local_attempts=3, tier=-1) == RetryTier(0)
    assert step(p, attempts=4, local_attempts=3, tier=0) == RetryTier(1)
    assert step(p, attempts=5, local_attempts=3, tier=1) == RetryTier(2)


def test_the_last_tier_is_reused_once_reached() -> None:
    assert step(policy(), attempts=6, local_attempts=3, tier=2) == RetryTier(2)


def test_without_local_attempts_a_failure_goes_straight_to_a_tier() -> None:
    assert step(policy(local=0), local_attempts=1) == RetryTier(0)


def test_reaching_max_attempts_gives_up_without_expiring() -> None:
    p = policy(max_attempts=3)

    assert step(p, attempts=2, local_attempts=2) == RetryLocal(1.0)
    assert step(p, attempts=3, local_attempts=3) == GiveUp(expired=False)
    assert step(p, attempts=9, local_attempts=1, tier=1) == GiveUp(expired=False)


def test_reaching_max_age_gives_up_as_expired() -> None:
    assert step(policy(max_age=60.0), age=60.0) == GiveUp(expired=True)
    assert step(policy(max_age=60.0), age=59.0) == RetryLocal(0.5)


def test_a_tier_that_would_end_after_max_age_expires_the_pair_now() -> None:
    p = policy(max_age=100.0)

    assert step(p, attempts=3, local_attempts=3, age=71.0) == GiveUp(expired=True)
    assert step(p, attempts=3, local_attempts=3, age=70.0) == RetryTier(0)
    assert step(p, attempts=4, local_attempts=3, age=0.0, tier=0) == GiveUp(expired=True)


@pytest.mark.parametrize("kind", ["http_status", "render", "blocked", "auth"])
def test_a_permanent_failure_gives_up_at_once(kind: str) -> None:
    verdict = Verdict.failure(kind, "no", retryable=False)  # type: ignore[arg-type]

    assert step(policy(), verdict) == GiveUp(expired=False)


def test_a_permanent_failure_is_not_reported_as_expired_even_when_old() -> None:
    assert step(policy(max_age=1.0), PERMANENT, age=5.0) == GiveUp(expired=False)


def test_an_ordered_hook_keeps_retrying_locally_instead_of_using_tiers() -> None:
    p = policy(max_attempts=20, use_tiers=False)

    assert step(p, attempts=3, local_attempts=3) == RetryLocal(2.0)
    assert step(p, attempts=7, local_attempts=7) == RetryLocal(32.0)  # past the local cap
    assert step(p, attempts=9, local_attempts=9) == RetryLocal(MAX_HELD_DELAY)


def test_an_ordered_hook_never_waits_past_its_max_age() -> None:
    p = policy(max_age=100.0, use_tiers=False)

    assert step(p, attempts=7, local_attempts=7, age=90.0) == RetryLocal(10.0)


def test_an_ordered_hook_still_honours_retry_after_when_held() -> None:
    verdict = Verdict(ok=False, kind="http_status", retryable=True, status=503, retry_after=45.0)

    assert step(policy(use_tiers=False), verdict, rand=bottom) == RetryLocal(45.0)


def test_without_tiers_configured_failures_are_held_locally() -> None:
    p = RetryPolicy(RetrySpec(8, 86400.0), 3, ())

    assert step(p, attempts=3, local_attempts=3) == RetryLocal(2.0)


@pytest.mark.parametrize(
    ("retry_after", "wanted"),
    [(None, 1.0), (8.0, 8.0)],  # the backoff's own wait (local attempt 2: up to 1 s), or asked
)
def test_a_local_wait_never_ends_past_max_age(retry_after: float | None, wanted: float) -> None:
    verdict = replace(RETRYABLE, retry_after=retry_after)
    p = policy(max_age=60.0)

    assert step(p, verdict, local_attempts=2, age=10.0) == RetryLocal(wanted)  # room to spare
    # 0.25 s of the budget left: the next attempt is made then, not up to `wanted` s past it
    assert step(p, verdict, local_attempts=2, age=59.75) == RetryLocal(0.25)


@pytest.mark.parametrize(
    ("retired", "after"),
    [
        (5.0, 0),  # shorter than every configured tier: on to the first (30s)
        (60.0, 1),  # between 30s and 5m: on to 5m, never back to 30s
        (600.0, 2),  # between 5m and 1h: on to 1h
        (86400.0, 2),  # longer than every configured tier: on to the last
    ],
)
def test_a_retired_tiers_pair_goes_on_to_the_first_configured_tier_at_least_as_long(
    retired: float, after: int
) -> None:
    came_from = retired_tier(TIERS, retired)

    assert next_tier(TIERS, came_from) == after
    assert step(policy(local=0), attempts=2, local_attempts=1, tier=came_from) == RetryTier(after)


def test_a_retired_tier_shorter_than_every_configured_one_counts_as_no_tier() -> None:
    assert retired_tier(TIERS, 5.0) == -1
    assert retired_tier((), 300.0) == -1  # no tier configured: retried in process
