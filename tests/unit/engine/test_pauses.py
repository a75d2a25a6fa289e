"""Pausing partitions: a full window, a held retry tier, and what a revoke must clear."""

from __future__ import annotations

from fake_clock import Clock
from kafka_fakes import PausingConsumer

from dispatcher.engine.pauses import Pauses
from dispatcher.engine.tracker import OffsetTracker

A, B = ("events", 0), ("events", 1)


def taken(tracker: OffsetTracker, key: tuple[str, int], offsets: range) -> None:
    for offset in offsets:
        tracker.add(*key, offset, 1)


def finish(tracker: OffsetTracker, key: tuple[str, int], offsets: range) -> None:
    for offset in offsets:
        tracker.finish(*key, offset)
    tracker.advance()


def test_a_full_window_pauses_its_partition_until_a_quarter_of_it_is_free() -> None:
    consumer, tracker = PausingConsumer(), OffsetTracker()
    pauses = Pauses(consumer, per_partition=20, total=1000)
    taken(tracker, A, range(20))
    taken(tracker, B, range(3))
    pauses.adjust([A, B], tracker, now=0)
    assert consumer.paused == {A}
    finish(tracker, A, range(5))  # 15 left: not below three quarters
    pauses.adjust([A, B], tracker, now=0)
    assert consumer.paused == {A}
    finish(tracker, A, range(5, 6))  # 14 left
    pauses.adjust([A, B], tracker, now=0)
    assert consumer.paused == set()


def test_a_full_total_window_waits_for_room_before_it_pauses_every_partition() -> None:
    consumer, tracker, clock = PausingConsumer(), OffsetTracker(), Clock()
    pauses = Pauses(consumer, per_partition=100, total=10, pause_after=1.0, clock=clock)
    taken(tracker, A, range(6))
    taken(tracker, B, range(4))
    pauses.adjust([A, B], tracker, now=0)
    assert pauses.awaiting_room
    assert consumer.paused == set()  # a pause would drop what librdkafka prefetched
    clock.now += 0.9
    pauses.adjust([A, B], tracker, now=0)
    assert pauses.awaiting_room
    assert consumer.paused == set()
    clock.now += 0.1  # full for `pause_after` seconds: a slow hook
    pauses.adjust([A, B], tracker, now=0)
    assert not pauses.awaiting_room
    assert consumer.paused == {A, B}


def test_the_wait_is_timed_by_its_own_clock_not_the_wall_clock() -> None:
    consumer, tracker, clock = PausingConsumer(), OffsetTracker(), Clock()
    pauses = Pauses(consumer, per_partition=100, total=10, pause_after=1.0, clock=clock)
    taken(tracker, A, range(10))
    pauses.adjust([A], tracker, now=1_000_000.0)
    clock.now += 1.0
    pauses.adjust([A], tracker, now=0.0)  # the wall clock stepped back: the pause comes anyway
    assert consumer.paused == {A}


def test_room_made_in_time_ends_the_wait_without_a_pause() -> None:
    consumer, tracker, clock = PausingConsumer(), OffsetTracker(), Clock()
    pauses = Pauses(consumer, per_partition=100, total=10, pause_after=1.0, clock=clock)
    taken(tracker, A, range(10))
    pauses.adjust([A], tracker, now=0)
    finish(tracker, A, range(1))
    clock.now += 0.5
    pauses.adjust([A], tracker, now=0)
    assert not pauses.awaiting_room
    taken(tracker, A, range(10, 11))  # full again: the wait starts over
    clock.now += 0.3
    pauses.adjust([A], tracker, now=0)
    clock.now += 0.7
    pauses.adjust([A], tracker, now=0)
    assert pauses.awaiting_room
    assert consumer.paused == set()


def test_every_partition_paused_for_the_total_window_resumes_below_three_quarters() -> None:
    consumer, tracker = PausingConsumer(), OffsetTracker()
    pauses = Pauses(consumer, per_partition=100, total=8, pause_after=0.0)
    taken(tracker, A, range(4))
    taken(tracker, B, range(4))
    pauses.adjust([A, B], tracker, now=0)
    assert consumer.paused == {A, B}
    finish(tracker, A, range(2))  # 6 left: not below three quarters
    pauses.adjust([A, B], tracker, now=0)
    assert consumer.paused == {A, B}
    finish(tracker, A, range(2, 3))  # 5 left
    pauses.adjust([A, B], tracker, now=0)
    assert consumer.paused == set()


def test_a_window_of_one_resumes_once_empty() -> None:
    consumer, tracker = PausingConsumer(), OffsetTracker()
    pauses = Pauses(consumer, per_partition=1, total=1, pause_after=0.0)
    taken(tracker, A, range(1))
    pauses.adjust([A], tracker, now=0)
    assert consumer.paused == {A}
    finish(tracker, A, range(1))
    pauses.adjust([A], tracker, now=0)
    assert consumer.paused == set()


def test_a_held_tier_partition_resumes_only_once_due() -> None:
    consumer, tracker = PausingConsumer(), OffsetTracker()
    pauses = Pauses(consumer, per_partition=10, total=1000)
    pauses.hold(A, 42, due_at=100.0)
    assert consumer.paused == {A}
    assert consumer.seeks == [("events", 0, 42)]
    pauses.adjust([A], tracker, now=99.9)
    assert consumer.paused == {A}
    pauses.adjust([A], tracker, now=100.0)
    assert consumer.paused == set()


def test_a_window_filled_mid_batch_pauses_at_the_first_record_left_until_there_is_room() -> None:
    consumer, tracker = PausingConsumer(), OffsetTracker()
    pauses = Pauses(consumer, per_partition=20, total=1000)
    tracker.add(*A, 7, 20, weight=20)  # a bundle filled the window: offset 8 was not taken in
    pauses.fill(A, 8)
    assert consumer.paused == {A}
    assert consumer.seeks == [("events", 0, 8)]  # fetched again on resume
    pauses.adjust([A], tracker, now=0)
    assert consumer.paused == {A}
    for _ in range(20):
        tracker.finish(*A, 7)
    tracker.advance()
    pauses.adjust([A], tracker, now=0)
    assert consumer.paused == set()


def test_release_clears_the_pause_of_leaving_partitions_so_a_return_is_not_stuck() -> None:
    consumer, tracker = PausingConsumer(), OffsetTracker()
    pauses = Pauses(consumer, per_partition=10, total=1000)
    taken(tracker, A, range(10))
    pauses.adjust([A], tracker, now=0)
    pauses.hold(B, 7, due_at=100.0)
    pauses.release({A, B})
    assert consumer.paused == set()
    assert pauses.full == set()
    assert pauses.waiting == {}
