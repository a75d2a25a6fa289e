"""A worker's liveness, as /healthz tells it: each part that must keep turning (the delivery
loop, every consumer thread) beats, a monotonic timestamp it sets as it turns, and a part whose
last beat is older than `liveness_timeout` has hung (a deadlock, a call that never returns).

A beat is a clock reading and a store, never per delivery: the delivery loop beats from a
periodic callback (`LoopBeat`), a consumer thread once a poll turn, which is bounded. Reading
them takes no lock a hung part could hold, so /healthz answers whatever hangs. A part is judged
only from its first beat (a worker waiting for Kafka at start has none yet), and none once the
worker stops: a stuck stop is the stop watchdog's (`STOP_WATCHDOG`)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

BEAT_EVERY = 1.0  # seconds between the delivery loop's beats, at most (a quarter of the bound)


class Pulse:
    """One part's beat. `rest()` once it ends its turns for good (it stops): no longer judged."""

    __slots__ = ("_clock", "_last", "_part")

    def __init__(self, last: dict[str, float], part: str, clock: Callable[[], float]) -> None:
        self._last, self._part, self._clock = last, part, clock
        self.beat()

    @classmethod
    def unwatched(cls) -> Pulse:
        """A pulse no one reads (a loop outside a worker: a test's, a replay's)."""
        return cls({}, "", time.monotonic)

    def beat(self) -> None:
        self._last[self._part] = self._clock()

    def rest(self) -> None:
        self._last[self._part] = math.inf


class Heartbeats:
    """The last beat of each part; `stalled()` names those silent past `timeout` seconds."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._last: dict[str, float] = {}
        self._watching = True

    def pulse_of(self, part: str) -> Pulse:
        """`part`'s pulse, a first beat given now."""
        return Pulse(self._last, part, self.clock)

    def stop_watching(self) -> None:
        """The worker is stopping: its parts end their turns, and none is stalled any more."""
        self._watching = False

    def stalled(self) -> dict[str, float]:
        """Each part silent for longer than `timeout`, with the seconds since its last beat."""
        if not self._watching:
            return {}
        now, last = self.clock(), dict(self._last)  # (a copy in one step: parts may be added)
        return {part: now - at for part, at in last.items() if now - at > self.timeout}


class LoopBeat:
    """Beats for an asyncio loop from a callback it runs every `every` seconds: while the
    loop is blocked, the callback does not run."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pulse: Pulse, every: float) -> None:
        self._loop, self._pulse, self._every = loop, pulse, every
        self._handle: asyncio.TimerHandle | None = None

    @classmethod
    def start(cls, heartbeats: Heartbeats, part: str) -> LoopBeat:
        """Beat for the running loop as `part`, often enough for `heartbeats`' bound."""
        every = min(BEAT_EVERY, heartbeats.timeout / 4)
        beating = cls(asyncio.get_running_loop(), heartbeats.pulse_of(part), every)
        beating._turn()
        return beating

    def _turn(self) -> None:
        self._pulse.beat()
        self._handle = self._loop.call_later(self._every, self._turn)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._pulse.rest()
