"""Which assigned partitions are paused, and why: a full in-flight window, or a partition held
until a time (a retry tier's head record due; a head record to read again once the schema
registry is back, engine/outage.py). Runs on the consumer thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from dispatcher.engine.tracker import OffsetTracker

log = logging.getLogger(__name__)
Key = tuple[str, int]
TOTAL_PAUSE_AFTER = 1.0  # seconds the total window stays full before every partition is paused


class Pauses:
    """Pauses and resumes partitions of one consumer, keeping its own record of what it paused.

    A partition is paused when its window holds `per_partition` offsets (a tier bundle counts
    as the records it replaces), and resumed below three quarters of it, so it does not flap at
    the edge. Resuming at half starved a slow hook: a resumed partition takes a fetch round
    trip to refill, while the pairs left above the hook's concurrency ran out (s2: 200 ms
    endpoint, concurrency 500).

    When all partitions together hold `total`, the consumer first waits for room without
    taking records in (`awaiting_room`), and pauses every partition only once the window has
    stayed full for `pause_after` seconds (a slow or stuck hook), so that rebalances go on being
    served; it resumes them below three quarters of `total`. A pause costs what librdkafka has
    prefetched: it drops a paused partition's fetched records, and fetches them again only at
    its next fetch round after the resume, up to a second later (its fetch long poll, or its
    one-second wake-up). Paused at every full window, a worker fetched its backlog anew and
    stood still up to a second each time the window filled: `max_inflight: 1000` gave scenario
    1 some 2,000 deliveries a second, whatever the CPU.
    """

    def __init__(
        self,
        consumer: Any,
        per_partition: int,
        total: int,
        pause_after: float = TOTAL_PAUSE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.clock = clock  # times a full total window (`now` is the wall clock, for due times)
        self.per_partition = per_partition
        self.total = total
        self.pause_after = pause_after
        self.resume_below = _three_quarters(per_partition)
        self.resume_total = _three_quarters(total)
        self.awaiting_room = False  # the total window is full, its partitions not paused yet
        self.total_full = False  # every partition paused: the total window stayed full
        self._full_since: float | None = None
        self.full: set[Key] = set()  # paused: in-flight window full
        self.waiting: dict[Key, float] = {}  # held partitions -> due time

    def hold(self, key: Key, offset: int, due_at: float) -> None:
        """Pause a partition at `offset` until `due_at` (a retry tier's head record due, or a
        head record to read again once the schema registry may be back)."""
        partition = TopicPartition(key[0], key[1], offset)
        self.consumer.pause([partition])
        self.consumer.seek(partition)
        self.waiting[key] = due_at

    def fill(self, key: Key, offset: int) -> None:
        """Pause a partition whose window filled up before `offset` in the middle of a batch;
        the records from `offset` on are fetched again once it resumes (`adjust`)."""
        partition = TopicPartition(key[0], key[1], offset)
        self.consumer.pause([partition])
        self.consumer.seek(partition)
        self.full.add(key)

    def adjust(self, assigned: Iterable[Key], tracker: OffsetTracker, now: float) -> None:
        """Pause partitions whose window filled up; resume those with room, or now due."""
        total_full = self._total_full(tracker.total_pending())
        pause, resume = [], []
        for key in assigned:
            pending = tracker.pending(*key)
            if key in self.waiting:
                if self.waiting[key] <= now and pending < self.per_partition:
                    del self.waiting[key]
                    resume.append(key)
                continue
            if key not in self.full and (pending >= self.per_partition or total_full):
                self.full.add(key)
                pause.append(key)
            elif key in self.full and pending < self.resume_below and not total_full:
                self.full.discard(key)
                resume.append(key)
        if pause:
            self.consumer.pause(_partitions(pause))
        if resume:
            self.consumer.resume(_partitions(resume))

    def _total_full(self, total: int) -> bool:
        """Whether every partition is to be paused for the total window (`total` taken in)."""
        if self.total_full:
            self.total_full = total >= self.resume_total
            if not self.total_full:
                self._full_since = None
        elif total < self.total:
            self._full_since = None
        else:
            now = self.clock()
            if self._full_since is None:
                self._full_since = now
            self.total_full = now - self._full_since >= self.pause_after
        self.awaiting_room = total >= self.total and not self.total_full
        return self.total_full

    def release(self, keys: set[Key]) -> None:
        """Resume and forget partitions that are leaving this consumer.

        librdkafka keeps a partition's pause across a revoke: one paused here would stay paused,
        unseen, when the group hands it back.
        """
        if not keys:
            return
        for key in keys:
            self.full.discard(key)
            self.waiting.pop(key, None)
        try:
            self.consumer.resume(_partitions(keys))
        except KafkaException as exc:
            log.warning("could not clear the pause of %s: %s", sorted(keys), exc)


def _three_quarters(window: int) -> int:
    """Where a window of `window` offsets resumes: below three quarters of it, and at the
    latest when it is empty (a window of 1)."""
    return max(window * 3 // 4, 1)


def _partitions(keys: Iterable[Key]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t, p in keys]
