"""Per-hook limits: requests in flight, a token-bucket rate limit and a circuit breaker."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from dispatcher.model.hook import CircuitSpec

Offer = Callable[[], "asyncio.Task[Any] | None"]
"""Starts the task a free slot is handed to (`Slots.offer`), or returns None: nothing to start
any more, and the slot passes on."""


class Slots:
    """At most `size` holders at a time (`async with slots:`), first come, first served.

    `asyncio.Semaphore`, but a freed slot passes straight to the first waiter, which leaves the
    queue as it is woken. (3.11's semaphore leaves a woken waiter in its queue until that
    waiter runs, so every release scans past the waiters woken before it: with thousands of
    pairs queued behind a hook's slots, a burst of n answers costs n * n / 2 steps.)

    A waiter is a task parked in `async with`, or an offer (`offer`): work with no task yet,
    whose task is started when a slot is handed to it. Thousands of pairs queued behind a
    hook's slots cost a task, a chain of coroutines and a rendered request each while parked;
    as offers, a small object each until a slot is theirs.
    """

    __slots__ = ("_free", "_loop", "_reserved", "_size", "_waiters")

    def __init__(self, size: int) -> None:
        self._size = size
        self._free = size
        self._waiters: deque[asyncio.Future[None] | Offer] = deque()
        self._reserved: set[asyncio.Task[Any]] = set()  # started by an offer, slot not yet used
        # the loop of the tasks offers start: `current_task(loop)` does not ask which loop runs
        # (in Python 3.11 a getpid() system call each time)
        self._loop: asyncio.AbstractEventLoop | None = None

    def locked(self) -> bool:
        """Whether a newcomer would wait."""
        return self._free == 0

    def idle(self) -> bool:
        """Whether no one holds a slot, waits for one, or was handed one it has not used."""
        return self._free == self._size and not self._waiters and not self._reserved

    def offer(self, start: Offer) -> None:
        """Call `start` when a slot is free for it: now, or when one is released, in turn with
        the waiters. The slot is then the started task's, taken by its first `async with`
        without waiting; a task that ends without one gives the slot back."""
        if self._free > 0:
            self._free -= 1
            if not self._hand(start):
                self._release()
            return
        self._waiters.append(start)

    async def __aenter__(self) -> None:
        if self._reserved:  # a task an offer started: its slot is waiting for it
            task = asyncio.current_task(self._loop)
            if task in self._reserved:
                self._reserved.discard(task)
                return
        if self._free > 0:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled
                self._release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()

    def _hand(self, start: Offer) -> bool:
        """Hand a slot to `start`'s task; False: it started none."""
        task = start()
        if task is None:
            return False
        self._reserved.add(task)
        self._loop = task.get_loop()
        task.add_done_callback(self._unreserve)
        return True

    def _unreserve(self, task: asyncio.Task[Any]) -> None:
        if task in self._reserved:  # it ended without using its slot
            self._reserved.discard(task)
            self._release()

    def _release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():  # not cancelled while it waited
                    waiter.set_result(None)  # the slot is its now
                    return
            elif self._hand(waiter):
                return
        self._free += 1


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


class CircuitBreaker:
    """Opens when the failure ratio over a sliding window passes a threshold (the hook's
    `circuit` settings).

    closed -> open (after `minimum_calls` in the window with ratio >= `failure_ratio`);
    open -> half-open after `open_for` seconds, admitting `probes` trial calls;
    half-open -> closed when the probes succeed, back to open on a probe failure; a probe cut
    short with no result goes back (`forgo`).

    The window counts calls in `BUCKETS` slices of `window / BUCKETS` seconds (a second by
    default), a slice leaving whole: no record per call (a busy hook made 180,000 a window).
    """

    BUCKETS = 30

    def __init__(
        self, settings: CircuitSpec | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or CircuitSpec()
        self._clock = clock
        self._width = self.settings.window / self.BUCKETS
        self._slice_calls = [0] * self.BUCKETS  # per slice of the window, a ring
        self._slice_failures = [0] * self.BUCKETS
        self._slice = 0  # the number of the newest slice written (time // width)
        self._calls = 0  # in the window, kept as slices come and go
        self._failures = 0
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

    def refuses(self) -> bool:
        """Whether a call now would be refused (`allow` would say False), without taking a
        probe: open, or half-open with every probe already out."""
        opened_at = self._opened_at
        if opened_at is None:
            return False
        return self._clock() - opened_at < self.settings.open_for or self._probes_left == 0

    @property
    def opened_at(self) -> float | None:
        """When it last opened, while it is not closed: a call `allow` lets out then is one of
        that opening's probes (`forgo`)."""
        return self._opened_at

    def allow(self) -> bool:
        """Whether a call may go out now (half-open admits a few probes)."""
        if self._opened_at is None:
            return True
        if self.state == "open":
            return False
        if self._probes_left > 0:
            self._probes_left -= 1
            return True
        return False

    def forgo(self, opened_at: float | None) -> None:
        """A call let out when the breaker stood at `opened_at` (its `opened_at` then; None:
        closed) ended with no result to `record`: cut short, its partition leaving this
        worker, say. A probe of the current opening is given back, to be taken by the next
        call: the circuit closes only on its probes' results, so a probe whose result never
        comes, once every probe is out, would leave it refusing every call for good."""
        if opened_at is not None and opened_at == self._opened_at:
            self._probes_left += 1

    def record(self, success: bool) -> None:
        now = self._clock()
        if self._opened_at is not None:
            if now - self._opened_at < self.settings.open_for:
                return  # open: results of calls let out before it opened do not count
            if not success:  # half-open: a failed probe opens it again
                self._trip(now)
                return
            self._probe_successes += 1
            if self._probe_successes >= self.settings.probes:
                self._opened_at = None
                self._forget_calls()
            return
        current = int(now // self._width)
        if current != self._slice:
            self._advance(current)
        index = current % self.BUCKETS
        self._slice_calls[index] += 1
        self._calls += 1
        if not success:
            self._slice_failures[index] += 1
            self._failures += 1
        if (
            self._failures
            and self._calls >= self.settings.minimum_calls
            and self._failures / self._calls >= self.settings.failure_ratio
        ):
            self._trip(now)

    def _advance(self, current: int) -> None:
        """Empty the slices that left the window on the way to slice `current`."""
        calls, failures = self._slice_calls, self._slice_failures
        for number in range(max(self._slice + 1, current - self.BUCKETS + 1), current + 1):
            index = number % self.BUCKETS
            self._calls -= calls[index]
            self._failures -= failures[index]
            calls[index] = failures[index] = 0
        self._slice = current

    def _trip(self, now: float) -> None:
        self._opened_at = now
        self._probes_left = self.settings.probes
        self._probe_successes = 0
        self._forget_calls()

    def _forget_calls(self) -> None:
        self._slice_calls = [0] * self.BUCKETS
        self._slice_failures = [0] * self.BUCKETS
        self._calls = self._failures = 0
