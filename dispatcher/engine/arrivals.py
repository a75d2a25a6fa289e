"""The rate records arrive at, as a consumer sees it: whether a trickle is worth waiting for."""

from __future__ import annotations

import time
from collections.abc import Callable


class Arrivals:
    """How many records a consumer took in over the last whole second (`last`)."""

    __slots__ = ("_clock", "_count", "_second", "last")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._second = int(clock())
        self._count = 0
        self.last = 0

    def add(self, records: int) -> None:
        second = int(self._clock())
        if second != self._second:
            self.last = self._count if second == self._second + 1 else 0  # idle seconds between
            self._second, self._count = second, 0
        self._count += records
