"""The records of one share-consumer poll and what each still waits for. No I/O.

In explicit acknowledgement mode a share consumer polls again only once every record of its
previous poll is acknowledged, so a batch is the unit of work: a record is accepted when every
write of its outcomes is acknowledged by Kafka; the batch is committed when all are settled.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dispatcher.model.pair import Pair

Coordinates = tuple[str, int, int]  # topic, partition, offset


def coordinates(pair: Pair) -> Coordinates:
    return (pair.record.topic, pair.record.partition, pair.record.offset)


@dataclass(slots=True)
class _Entry:
    message: Any  # the polled message, which acknowledge() takes
    waiting: int  # outcome writes not yet acknowledged by Kafka
    running: list[Pair] = field(default_factory=list)  # pairs without an outcome yet


class ShareBatch:
    """One poll's records, acquired at `acquired_at` (monotonic seconds).

    `decided` and `attempted` are called on the delivery loop's thread (when a pair's result is
    ready, when it made an attempt), the rest on the consumer thread: the pairs still running
    are guarded by a lock.
    """

    __slots__ = ("_entries", "_lock", "_made", "acquired_at")

    def __init__(self, acquired_at: float) -> None:
        self.acquired_at = acquired_at
        self._entries: dict[Coordinates, _Entry] = {}
        self._lock = threading.Lock()
        self._made: dict[int, tuple[int, float]] = {}  # id of a running pair -> `made`

    def add(
        self, key: Coordinates, message: Any, waiting: int, running: Iterable[Pair] = ()
    ) -> None:
        """Track a record whose end needs `waiting` acknowledged writes."""
        self._entries[key] = _Entry(message, waiting, list(running))

    def decided(self, pair: Pair) -> bool:
        """`pair` has its outcome (its records are being written); False if it was not running
        in this batch (a pair of an earlier batch, cut by a lock hand-off)."""
        entry = self._entries.get(coordinates(pair))
        with self._lock:
            if entry is None or not any(p is pair for p in entry.running):
                return False
            entry.running = [p for p in entry.running if p is not pair]
            self._made.pop(id(pair), None)
            return True

    def attempted(self, pair: Pair, number: int, started: float) -> None:
        """`pair` made its attempt `number`, which began at `started` (epoch seconds); a pair
        not running in this batch (of another batch, or of a retry tier) is not counted."""
        entry = self._entries.get(coordinates(pair))
        with self._lock:
            if entry is None or not any(p is pair for p in entry.running):
                return
            made = self._made.get(id(pair))
            self._made[id(pair)] = (number, started if made is None else made[1])

    def made(self, pair: Pair) -> tuple[int, float] | None:
        """The attempts `pair` made so far in this batch and when the first began; None: none."""
        with self._lock:
            return self._made.get(id(pair))

    def written(self, key: Coordinates) -> Any | None:
        """One write of `key`'s outcomes is acknowledged: its message when that was the last."""
        entry = self._entries.get(key)
        if entry is None or entry.waiting <= 0:
            return None
        entry.waiting -= 1
        return entry.message if entry.waiting == 0 else None

    def running(self) -> list[Pair]:
        """Pairs still being delivered."""
        with self._lock:
            return [pair for entry in self._entries.values() for pair in entry.running]

    def unsettled(self) -> list[Any]:
        """Messages of records whose outcomes are not all acknowledged."""
        return [e.message for e in self._entries.values() if e.waiting > 0]

    def messages(self) -> list[Any]:
        return [e.message for e in self._entries.values()]

    @property
    def settled(self) -> bool:
        return all(e.waiting <= 0 for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
