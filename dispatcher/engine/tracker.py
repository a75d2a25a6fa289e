"""Out-of-order completion tracking: which offset of a partition may be committed. Pure."""

from __future__ import annotations

from collections import deque


class PartitionTracker:
    """Offsets of one partition in consumption order, each with its count of unfinished pairs.

    Pairs finish in any order; `advance()` returns the offset to commit (the one after the
    highest offset whose pairs, and every lower offset's pairs, are all finished).

    Each offset is added with a token (the consumed record) that its completions must bring: a
    partition revoked and assigned back is consumed again from its committed offset, and a late
    completion from before must not count for the record taken in again.

    `pending` is what the partition holds of the in-flight window: its offsets not yet
    committable, each counting once, but a tier bundle as the records it stands for (`weight`).
    """

    __slots__ = ("_committed", "_order", "_pending", "_remaining", "_tokens", "_weights")

    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._remaining: dict[int, int] = {}
        self._tokens: dict[int, object] = {}
        self._weights: dict[int, int] = {}  # offsets that count more than once
        self._pending = 0
        self._committed: int | None = None

    def add(self, offset: int, pairs: int, token: object = None, weight: int = 1) -> None:
        """Start tracking `offset` with `pairs` unfinished pairs (0: finished at once), counting
        `weight` (at least 1) in the window until it is committable."""
        if offset in self._remaining or (self._order and offset < self._order[-1]):
            raise ValueError(f"offset {offset} added out of order")
        self._order.append(offset)
        self._remaining[offset] = pairs
        self._tokens[offset] = token
        weight = max(weight, 1)
        if weight > 1:
            self._weights[offset] = weight
        self._pending += weight

    def finish(self, offset: int, token: object = None) -> None:
        """One pair of `offset` has reached an end (its record is acknowledged)."""
        left = self._remaining.get(offset)
        if left is None or left <= 0 or self._tokens[offset] is not token:
            return
        self._remaining[offset] = left - 1

    def advance(self) -> int | None:
        """The new commit position when the finished prefix grew, else None."""
        moved = None
        while self._order and self._remaining[self._order[0]] == 0:
            offset = self._order.popleft()
            del self._remaining[offset]
            del self._tokens[offset]
            self._pending -= self._weights.pop(offset, 1)
            moved = offset + 1
        if moved is not None:
            self._committed = moved
        return moved

    @property
    def pending(self) -> int:
        """Offsets taken in and not yet committable, by their weight (0: none)."""
        return self._pending

    @property
    def committed(self) -> int | None:
        return self._committed

    def __contains__(self, offset: int) -> bool:
        return offset in self._remaining


class OffsetTracker:
    """A `PartitionTracker` per (topic, partition) currently assigned."""

    __slots__ = ("_partitions",)

    def __init__(self) -> None:
        self._partitions: dict[tuple[str, int], PartitionTracker] = {}

    def add(
        self,
        topic: str,
        partition: int,
        offset: int,
        pairs: int,
        token: object = None,
        weight: int = 1,
    ) -> None:
        self._partitions.setdefault((topic, partition), PartitionTracker()).add(
            offset, pairs, token, weight
        )

    def finish(self, topic: str, partition: int, offset: int, token: object = None) -> None:
        tracker = self._partitions.get((topic, partition))
        if tracker is not None:
            tracker.finish(offset, token)

    def advance(self) -> dict[tuple[str, int], int]:
        """Every partition whose commit position moved, with its new position."""
        moved = {}
        for key, tracker in self._partitions.items():
            position = tracker.advance()
            if position is not None:
                moved[key] = position
        return moved

    def pending(self, topic: str, partition: int) -> int:
        tracker = self._partitions.get((topic, partition))
        return tracker.pending if tracker is not None else 0

    def total_pending(self) -> int:
        return sum(t.pending for t in self._partitions.values())

    def generation(self, topic: str, partition: int) -> object | None:
        """A token of the partition's tracking since it was (last) assigned: None once it is
        dropped, another after it is assigned back. A record written for a pair of it keeps
        the token it was written under, to be dropped unwritten once the token is gone."""
        return self._partitions.get((topic, partition))

    def drop(self, topic: str, partition: int) -> None:
        """Forget a revoked or lost partition: later completions for it are ignored."""
        self._partitions.pop((topic, partition), None)

    def partitions(self) -> list[tuple[str, int]]:
        return list(self._partitions)
