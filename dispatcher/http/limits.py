"""Per-hook limits: requests in flight, a token-bucket rate limit and a circuit breaker."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 1.0)
        self._tokens = self.burst
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while (wait := self.wait_time()) > 0:
                await asyncio.sleep(wait)
            self._tokens -= 1


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_ratio: float = 0.5
    window: float = 30.0
    minimum_calls: int = 20
    open_for: float = 15.0
    probes: int = 3


class CircuitBreaker:
    """Opens when the failure ratio over a sliding window passes a threshold.

    closed -> open (after `minimum_calls` in the window with ratio >= `failure_ratio`);
    open -> half-open after `open_for` seconds, admitting `probes` trial calls;
    half-open -> closed when the probes succeed, back to open on a probe failure.
    """

    def __init__(
        self, settings: BreakerSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._calls: deque[tuple[float, bool]] = deque()
        self._failures = 0  # failures among `_calls`, kept as calls come and go
        self._opened_at: float | None = None
        self._probes_left = 0
        self._probe_successes = 0

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.settings.open_for:
            return "open"
        return "half-open"

    def is_open(self) -> bool:
        """Whether calls are refused now (open, not yet half-open): `state`, cheaper."""
        opened_at = self._opened_at
        return opened_at is not None and self._clock() - opened_at < self.settings.open_for

    def allow(self) -> bool:
        """Whether a call may go out now (half-open admits a few probes)."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        if self._probes_left > 0:
            self._probes_left -= 1
            return True
        return False

    def record(self, success: bool) -> None:
        now = self._clock()
        state = self.state
        if state == "half-open":
            if not success:
                self._trip(now)
                return
            self._probe_successes += 1
            if self._probe_successes >= self.settings.probes:
                self._opened_at = None
                self._forget_calls()
            return
        if state == "open":
            return
        self._calls.append((now, success))
        self._failures += not success
        while self._calls and now - self._calls[0][0] > self.settings.window:
            self._failures -= not self._calls.popleft()[1]
        calls = len(self._calls)
        if (
            calls >= self.settings.minimum_calls
            and self._failures / calls >= self.settings.failure_ratio
        ):
            self._trip(now)

    def _trip(self, now: float) -> None:
        self._opened_at = now
        self._probes_left = self.settings.probes
        self._probe_successes = 0
        self._forget_calls()

    def _forget_calls(self) -> None:
        self._calls.clear()
        self._failures = 0
