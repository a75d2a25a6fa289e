"""Per-hook limits: the slots in flight; with a fake clock, the token bucket and the circuit
breaker's states."""

from __future__ import annotations

import asyncio

import pytest
from fake_clock import Clock

from dispatcher.http import limits
from dispatcher.http.limits import CircuitBreaker, Slots, TokenBucket
from dispatcher.model.hook import CircuitSpec

# --- slots ----------------------------------------------------------------------------------


async def hold(slots: Slots, name: str, log: list[str], gate: asyncio.Event) -> None:
    """Take a slot, log `name`, and hold the slot until `gate` is set."""
    async with slots:
        log.append(name)
        await gate.wait()


async def settle() -> None:
    """Let every ready task run until it waits."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_slots_admit_their_size_at_once_and_the_rest_in_order_of_arrival() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        slots, log, gate = Slots(2), list[str](), asyncio.Event()
        tasks = [asyncio.create_task(hold(slots, name, log, gate)) for name in "abcde"]
        await settle()
        first = list(log)
        assert slots.locked()
        gate.set()
        await asyncio.gather(*tasks)
        assert not slots.locked()
        return first, log

    first, log = asyncio.run(scenario())
    assert first == ["a", "b"]
    assert log == list("abcde")


def test_a_waiter_cancelled_in_the_queue_takes_no_slot() -> None:
    async def scenario() -> list[str]:
        slots, log, gate = Slots(1), list[str](), asyncio.Event()
        async with slots:
            x, y = (asyncio.create_task(hold(slots, name, log, gate)) for name in "xy")
            await settle()
            x.cancel()
            await settle()
        await settle()
        assert log == ["y"]  # x's turn passed to y
        gate.set()
        await asyncio.gather(x, y, return_exceptions=True)
        assert not slots.locked()
        return log

    assert asyncio.run(scenario()) == ["y"]


def test_a_waiter_cancelled_after_it_was_handed_a_slot_passes_the_slot_on() -> None:
    async def scenario() -> list[str]:
        slots, log, gate = Slots(1), list[str](), asyncio.Event()
        async with slots:
            x, y = (asyncio.create_task(hold(slots, name, log, gate)) for name in "xy")
            await settle()
            assert log == []
        x.cancel()  # the slot was handed to x as the block above ended; x has not run since
        await settle()
        assert log == ["y"]
        gate.set()
        await asyncio.gather(x, y, return_exceptions=True)
        assert not slots.locked()
        return log

    assert asyncio.run(scenario()) == ["y"]


def offer(slots: Slots, name: str, log: list[str], gate: asyncio.Event) -> None:
    """Offer `hold` as work for a slot: its task is started when the slot is handed to it."""
    slots.offer(lambda: asyncio.create_task(hold(slots, name, log, gate)))


def test_offers_start_when_a_slot_is_theirs_in_turn_with_parked_waiters() -> None:
    """An offer is started at once while a slot is free, else when one is released, in the
    order of arrival with the tasks parked in `async with`; a started task's `async with`
    takes the slot it was handed, never a second one."""

    async def scenario() -> list[str]:
        slots, log, gate = Slots(2), list[str](), asyncio.Event()
        offer(slots, "a", log, gate)
        parked = asyncio.create_task(hold(slots, "b", log, gate))
        await settle()
        offer(slots, "c", log, gate)  # both slots are taken: it waits, as d does
        d = asyncio.create_task(hold(slots, "d", log, gate))
        await settle()  # d parks
        offer(slots, "e", log, gate)
        await settle()
        assert log == ["a", "b"]
        gate.set()
        await asyncio.gather(parked, d)
        await settle()
        assert not slots.locked()
        return log

    assert asyncio.run(scenario()) == list("abcde")


def test_a_task_started_by_an_offer_that_ends_without_its_slot_gives_it_back() -> None:
    async def scenario() -> list[str]:
        slots, log, gate = Slots(1), list[str](), asyncio.Event()
        gate.set()

        async def leave() -> None:
            log.append("left")  # no `async with`: e.g. a paused hook's pair

        slots.offer(lambda: asyncio.create_task(leave()))
        offer(slots, "next", log, gate)  # waits for the slot the first task holds
        await settle()
        assert not slots.locked()
        return log

    assert asyncio.run(scenario()) == ["left", "next"]


def test_an_offer_that_starts_nothing_passes_the_slot_on() -> None:
    async def scenario() -> list[str]:
        slots, log, gate = Slots(1), list[str](), asyncio.Event()
        async with slots:
            slots.offer(lambda: None)  # dropped while it waited: nothing to start
            offer(slots, "y", log, gate)
        await settle()
        assert log == ["y"]
        assert slots.locked()
        gate.set()
        await settle()
        assert not slots.locked()
        return log

    assert asyncio.run(scenario()) == ["y"]


# --- token bucket ---------------------------------------------------------------------------


def drain(bucket: TokenBucket, tokens: int) -> None:
    async def take() -> None:
        for _ in range(tokens):
            await bucket.acquire()

    asyncio.run(take())


def test_a_full_bucket_admits_a_burst_without_waiting() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=5, clock=clock)

    assert bucket.burst == 5
    drain(bucket, 5)
    assert bucket.wait_time() == pytest.approx(0.2)


def test_an_empty_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=1, clock=clock)
    drain(bucket, 1)

    assert bucket.wait_time() == pytest.approx(0.5)
    clock.advance(0.25)
    assert bucket.wait_time() == pytest.approx(0.25)
    clock.advance(0.25)
    assert bucket.wait_time() == 0.0


def test_an_idle_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    clock.advance(3600)
    drain(bucket, 3)

    assert bucket.wait_time() == pytest.approx(0.1)


def test_a_slow_rate_still_allows_one_request_at_once() -> None:
    bucket = TokenBucket(rate=0.5, clock=Clock())

    assert bucket.burst == 1.0
    assert bucket.wait_time() == 0.0
    drain(bucket, 1)
    assert bucket.wait_time() == pytest.approx(2.0)


def test_acquire_waits_for_the_next_token(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    monkeypatch.setattr(limits.asyncio, "sleep", sleep)
    bucket = TokenBucket(rate=4, burst=1, clock=clock)
    drain(bucket, 3)

    assert slept == [pytest.approx(0.25), pytest.approx(0.25)]
    assert clock.now == pytest.approx(1000.5)


# --- circuit breaker ------------------------------------------------------------------------

SETTINGS = CircuitSpec(failure_ratio=0.5, window=30.0, minimum_calls=4, open_for=15.0, probes=2)


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(SETTINGS, clock=clock)


def record(b: CircuitBreaker, *results: bool) -> None:
    for ok in results:
        b.record(ok)


def test_a_new_breaker_is_closed_and_allows_calls() -> None:
    b = breaker(Clock())

    assert b.state == "closed"
    assert b.allow()


def test_failures_below_the_minimum_number_of_calls_keep_it_closed() -> None:
    b = breaker(Clock())
    record(b, False, False, False)

    assert b.state == "closed"
    assert b.allow()


def test_a_failure_ratio_below_the_threshold_keeps_it_closed() -> None:
    b = breaker(Clock())
    record(b, True, True, True, False, True, False, True)

    assert b.state == "closed"


def test_reaching_the_failure_ratio_over_enough_calls_opens_it() -> None:
    b = breaker(Clock())
    record(b, True, False, True, False)

    assert b.state == "open"
    assert not b.allow()


def test_calls_older_than_the_window_no_longer_count() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, False, False, False)
    clock.advance(31)
    record(b, True)

    assert b.state == "closed"
    record(b, False, True, True)
    assert b.state == "closed"  # 1 failure out of 4 in the window


def test_an_open_breaker_ignores_results_and_half_opens_after_its_open_time() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, False, False, False, False)
    clock.advance(14.9)
    record(b, True, True, True)

    assert b.state == "open"
    clock.advance(0.1)
    assert b.state == "half-open"


def test_half_open_admits_only_its_probes() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, False, False, False, False)
    clock.advance(15)

    assert [b.allow() for _ in range(4)] == [True, True, False, False]


def test_successful_probes_close_it_with_a_clean_window() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, False, False, False, False)
    clock.advance(15)
    b.allow()
    b.allow()
    record(b, True)

    assert b.state == "half-open"
    record(b, True)
    assert b.state == "closed"
    assert b.allow()
    record(b, False, False, False)
    assert b.state == "closed"  # the failures before it opened are forgotten


def test_a_failed_probe_opens_it_again_for_a_full_open_time() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, False, False, False, False)
    clock.advance(20)
    b.allow()
    record(b, True, False)

    assert b.state == "open"
    assert not b.allow()
    clock.advance(14)
    assert b.state == "open"
    clock.advance(1)
    assert b.state == "half-open"
    assert [b.allow() for _ in range(3)] == [True, True, False]


def test_the_default_settings_need_twenty_calls_to_open() -> None:
    b = CircuitBreaker(clock=Clock())
    record(b, *[False] * 19)

    assert b.state == "closed"
    record(b, False)
    assert b.state == "open"


def test_a_success_that_brings_the_calls_to_the_minimum_opens_it_when_the_ratio_is_reached() -> (
    None
):
    b = breaker(Clock())
    record(b, False, False, False, True)  # the fourth call: 3 failures of 4

    assert b.state == "open"


def test_the_window_moves_a_slice_at_a_time_and_forgets_a_long_silence() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, False, False)
    clock.advance(20)
    record(b, False)
    clock.advance(10.5)  # the first two calls are more than 30 s old, the third is not
    record(b, True, True, True)

    assert b.state == "closed"  # 1 failure of 4 in the window (3 of 6 with the first two)
    clock.advance(3600)
    record(b, False, False, False)
    assert b.state == "closed"  # three calls only: the hour-old ones left the window
    record(b, False)
    assert b.state == "open"


def test_refuses_says_what_allow_would_without_taking_a_probe() -> None:
    clock = Clock()
    b = breaker(clock)
    assert not b.refuses()
    record(b, False, False, False, False)
    assert b.refuses()  # open
    clock.advance(15)
    assert [b.refuses() for _ in range(3)] == [False] * 3  # half-open: asking takes no probe
    assert [b.allow() for _ in range(2)] == [True, True]
    assert b.refuses()  # every probe out


def test_a_probe_cut_short_goes_back_and_the_circuit_can_still_close() -> None:
    clock = Clock()
    b = breaker(clock)
    record(b, False, False, False, False)
    clock.advance(15)
    assert [b.allow() for _ in range(2)] == [True, True]
    opening = b.opened_at
    b.forgo(opening)  # one probe cut (its partition left): no result will ever come

    assert not b.refuses()
    assert b.allow()  # taken again by the next call
    record(b, True, True)
    assert b.state == "closed"


def test_a_call_cut_short_gives_back_only_a_probe_of_the_current_opening() -> None:
    clock = Clock()
    b = breaker(clock)
    closed = b.opened_at
    assert closed is None
    record(b, False, False, False, False)
    clock.advance(15)
    assert [b.allow() for _ in range(2)] == [True, True]
    b.forgo(closed)  # let out before it opened: no probe of this opening
    assert b.refuses()
    earlier = b.opened_at
    record(b, False)  # a probe failed: opened again, with probes of its own
    clock.advance(15)
    assert [b.allow() for _ in range(2)] == [True, True]
    b.forgo(earlier)
    assert b.refuses()
