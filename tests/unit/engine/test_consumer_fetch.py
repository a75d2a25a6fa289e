"""How the consumer thread takes records in: a backlog in batches, a trickle gathered briefly."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fake_clock import Clock
from kafka_fakes import PausingConsumer

from dispatcher.engine.arrivals import Arrivals
from dispatcher.engine.consumer import (
    BATCH,
    GATHER_BELOW,
    GATHER_RATE,
    GATHER_SECONDS,
    POLL_SECONDS,
    ConsumerLoop,
)
from dispatcher.engine.pauses import Pauses
from dispatcher.engine.tracker import OffsetTracker


class ScriptedConsumer:
    """Answers each `consume` with the next list of its script and remembers the calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[int, float]] = []

    def consume(self, count: int, timeout: float) -> list[Any]:
        self.calls.append((count, timeout))
        return self.answers.pop(0) if self.answers else []


def loop_over(
    consumer: ScriptedConsumer, max_inflight: int = 10_000, busy: bool = True
) -> ConsumerLoop:
    """A loop with only what `_fetch` reads; `busy`: GATHER_RATE records came last second."""
    loop = ConsumerLoop.__new__(ConsumerLoop)
    loop.consumer = consumer
    loop.settings = SimpleNamespace(max_inflight=max_inflight)  # type: ignore[assignment]
    loop.tracker = OffsetTracker()
    loop.arrivals = Arrivals()
    loop.arrivals.last = GATHER_RATE if busy else GATHER_RATE - 1
    return loop


def test_a_backlog_is_taken_a_batch_a_turn_without_waiting() -> None:
    consumer = ScriptedConsumer(["m"] * BATCH)
    assert len(loop_over(consumer)._fetch()) == BATCH
    assert consumer.calls == [(BATCH, 0)]


def test_a_trickle_of_a_busy_input_waits_briefly_for_the_records_behind_it() -> None:
    consumer = ScriptedConsumer(["a", "b"], ["c", "d", "e"])
    assert loop_over(consumer)._fetch() == ["a", "b", "c", "d", "e"]
    assert consumer.calls == [(BATCH, 0), (BATCH - 2, GATHER_SECONDS)]


def test_a_trickle_of_a_quiet_input_is_taken_in_at_once() -> None:
    consumer = ScriptedConsumer(["a", "b"], ["c"])
    assert loop_over(consumer, busy=False)._fetch() == ["a", "b"]
    assert consumer.calls == [(BATCH, 0)]


def test_an_idle_topic_waits_for_its_first_record_then_gathers() -> None:
    consumer = ScriptedConsumer([], ["a"], ["b"])
    assert loop_over(consumer)._fetch() == ["a", "b"]
    assert consumer.calls == [(BATCH, 0), (1, POLL_SECONDS), (BATCH - 1, GATHER_SECONDS)]


def test_an_idle_topic_with_nothing_arriving_gives_an_empty_turn() -> None:
    consumer = ScriptedConsumer([], [])
    assert loop_over(consumer)._fetch() == []
    assert consumer.calls == [(BATCH, 0), (1, POLL_SECONDS)]


def test_a_turn_that_fills_the_room_left_in_the_window_does_not_wait() -> None:
    consumer = ScriptedConsumer(["a", "b", "c"])
    assert loop_over(consumer, max_inflight=3)._fetch() == ["a", "b", "c"]
    assert consumer.calls == [(3, 0)]


def test_a_turn_of_many_records_below_a_batch_does_not_wait() -> None:
    consumer = ScriptedConsumer(["m"] * GATHER_BELOW)
    assert len(loop_over(consumer)._fetch()) == GATHER_BELOW
    assert consumer.calls == [(BATCH, 0)]


def test_arrivals_are_the_records_of_the_last_whole_second() -> None:
    clock = Clock()
    arrivals = Arrivals(clock)
    arrivals.add(300)
    clock.now += 0.5
    arrivals.add(900)
    assert arrivals.last == 0  # the first second is not over
    clock.now += 0.6
    arrivals.add(7)
    assert arrivals.last == 1200
    clock.now += 1.0
    arrivals.add(0)
    assert arrivals.last == 7
    clock.now += 5.0  # idle seconds in between: nothing came in the last one
    arrivals.add(2)
    assert arrivals.last == 0


class AckingProducer:
    """Remembers how long each `poll` was allowed to wait for acknowledgements."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def poll(self, timeout: float) -> int:
        self.waits.append(timeout)
        return 0


def stepping(consumer: ScriptedConsumer, max_inflight: int) -> tuple[ConsumerLoop, AckingProducer]:
    """A loop with what `step` reads, its window of `max_inflight` already full."""
    loop = loop_over(consumer, max_inflight=max_inflight)
    producer = AckingProducer()
    loop.producer = producer
    loop.writer = SimpleNamespace(  # type: ignore[assignment]
        poll=producer.poll, flush_unsent=lambda: None, fatal=None
    )
    loop.fetching = True
    loop.assigned = {("events", 0)}
    loop.pauses = Pauses(
        PausingConsumer(), max_inflight, max_inflight, pause_after=1.0, clock=lambda: 0.0
    )  # never full for a second: the window waits for room
    for offset in range(max_inflight):
        loop.tracker.add("events", 0, offset, 1)
    return loop, producer


def test_a_full_window_takes_nothing_in_and_waits_for_acknowledgements() -> None:
    consumer = ScriptedConsumer()
    loop, producer = stepping(consumer, max_inflight=5)
    loop.step()  # finds the window full
    assert loop.pauses.awaiting_room
    assert consumer.calls == [(1, 0), (1, POLL_SECONDS)]
    loop.step()
    loop.step()
    assert len(consumer.calls) == 2  # nothing asked of the consumer while waiting
    assert producer.waits == [0, POLL_SECONDS, POLL_SECONDS]
    for offset in range(5):
        loop.tracker.finish("events", 0, offset)
    consumer.store_offsets = lambda offsets: None  # type: ignore[attr-defined]
    loop.step()  # the acknowledgements made room: taken in again from the next turn
    assert not loop.pauses.awaiting_room
    loop.step()
    assert consumer.calls[2] == (5, 0)  # the whole window
    assert producer.waits[-1] == 0
