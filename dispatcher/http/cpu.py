"""Whether this process is short of CPU: the one figure the delivery path adapts its turns to."""

from __future__ import annotations

import time
from collections.abc import Callable

PERIOD = 0.25  # seconds of CPU use a reading covers (at least)
SATURATED = 0.8  # of a core: all of a worker's Python shares one GIL, so one core is its most


class CpuGauge:
    """Whether the process used at least `SATURATED` of a core since its last reading, taken
    on the first call `PERIOD` or more after it (a call costs a clock read between readings).
    After an idle spell the first reading covers the whole spell: not saturated."""

    __slots__ = ("_clock", "_cpu", "_cpu_clock", "_since", "saturated_now")

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._since = clock()
        self._cpu = cpu_clock()
        self.saturated_now = False

    def saturated(self) -> bool:
        now = self._clock()
        elapsed = now - self._since
        if elapsed >= PERIOD:
            cpu = self._cpu_clock()
            self.saturated_now = cpu - self._cpu >= SATURATED * elapsed
            self._since, self._cpu = now, cpu
        return self.saturated_now


PROCESS_CPU = CpuGauge()  # the process's: every hook client of a worker reads this one
