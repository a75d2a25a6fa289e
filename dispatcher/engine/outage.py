"""The partitions a consumer holds while the schema registry is away, and the spell they make.

A record whose Avro schema cannot be had (`pipeline.intake.Outage`) is no dead letter: its
partition is held (`Pauses.hold`) and the record is read again after a backoff that grows with
each failed try of that partition (`outage_backoff`), so a registry down for minutes costs a
few look-ups, and the partitions of other events flow on. The spell is logged once as it
begins and once as it ends, not per record; `dispatcher_registry_held_partitions` counts the
partitions held meanwhile. Runs on the consumer thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)
Key = tuple[str, int]
FIRST_WAIT = 1.0  # seconds before a held record is read again, doubled at each failed try ...
LONGEST_WAIT = 30.0  # ... up to this


def outage_backoff(tries: int) -> float:
    """Seconds a partition waits after its `tries`-th failed try (1, 2, ...) in a row."""
    return min(FIRST_WAIT * 2.0 ** min(max(tries - 1, 0), 16), LONGEST_WAIT)


class RegistryOutage:
    """The partitions held for the schema registry, each with its failed tries in a row."""

    __slots__ = ("_gauge", "held")

    def __init__(self, gauge: Any) -> None:
        self._gauge = gauge  # dispatcher_registry_held_partitions, shared by the intake loops
        self.held: dict[Key, int] = {}

    def hold(self, key: Key, error: str, now: float) -> float:
        """Note that `key`'s head record met the registry away (`error`); when to read it again."""
        if not self.held:
            log.warning(
                "%s: holding the partitions whose events need it, their records uncommitted,"
                " and reading them again as it comes back",
                error,
            )
        tries = self.held.get(key, 0) + 1
        if tries == 1:
            self._gauge.inc()
        self.held[key] = tries
        return now + outage_backoff(tries)

    def taken(self, key: Key) -> None:
        """`key`'s head record was taken in: the registry served it (or it needed none)."""
        if self.held.pop(key, None) is not None:
            self._released(1, "schema registry available again: the partitions held are read on")

    def forget(self, keys: Iterable[Key]) -> None:
        """Partitions leaving this consumer: their next owner holds them if it must."""
        left = sum(self.held.pop(key, None) is not None for key in keys)
        if left:
            self._released(left, "the partitions held for the schema registry left this worker")

    def _released(self, count: int, why: str) -> None:
        self._gauge.dec(count)
        if not self.held:
            log.warning(why)
