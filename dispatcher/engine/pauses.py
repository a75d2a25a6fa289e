"""Which assigned partitions are paused, and why: a full in-flight window, or a retry-tier
partition held until its head record is due. Runs on the consumer thread."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from dispatcher.engine.tracker import OffsetTracker

log = logging.getLogger(__name__)
Key = tuple[str, int]


class Pauses:
    """Pauses and resumes partitions of one consumer, keeping its own record of what it paused.

    A partition is paused when its window holds `per_partition` offsets (or all partitions hold
    `total`; a tier bundle counts as the records it replaces), and resumed below three quarters
    of it, so it does not flap at the edge. Resuming at half starved a slow hook: a resumed
    partition takes a fetch round trip to refill, while the pairs left above the hook's
    concurrency ran out (s2: 200 ms endpoint, concurrency 500).
    """

    def __init__(self, consumer: Any, per_partition: int, total: int) -> None:
        self.consumer = consumer
        self.per_partition = per_partition
        self.total = total
        self.resume_below = per_partition * 3 // 4
        self.full: set[Key] = set()  # paused: in-flight window full
        self.waiting: dict[Key, float] = {}  # held retry-tier partitions -> due time

    def hold(self, key: Key, offset: int, due_at: float) -> None:
        """Pause a retry-tier partition at `offset` until `due_at`."""
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
        total_full = tracker.total_pending() >= self.total
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


def _partitions(keys: Iterable[Key]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t, p in keys]
