"""How many letters a replay has under way at once: the next letter's task starts only when one
of the window's places is free, so a selection of millions holds a bounded number of tasks
(never one per letter, made before the first is sent), and a stop is heard between two starts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

Work = Callable[[], Coroutine[Any, Any, None]]


class Window:
    """At most `size` tasks running; the first failure of one is kept for `raise_failure`."""

    def __init__(self, size: int) -> None:
        self._places = asyncio.Semaphore(size)
        self._running: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []

    @property
    def running(self) -> list[asyncio.Task[None]]:
        return list(self._running)

    async def start(self, work: Work, stopped: asyncio.Future[None]) -> bool:
        """Run `work()` in a task once a place is free; False, and nothing run, when `stopped`
        is done first."""
        if not await _place(self._places, stopped):
            return False
        task = asyncio.create_task(work())
        self._running.add(task)
        task.add_done_callback(self._finished)
        return True

    def raise_failure(self) -> None:
        """Raise what the first task that failed raised, if one did."""
        if self._failures:
            raise self._failures[0]

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._places.release()
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self._failures.append(error)


async def _place(places: asyncio.Semaphore, stopped: asyncio.Future[None]) -> bool:
    """Take a place of `places`: True once taken, False (none taken) once `stopped` is done."""
    if stopped.done():
        return False
    if not places.locked():
        return await places.acquire()  # at once: no other task runs in between
    taking = asyncio.ensure_future(places.acquire())
    first: list[asyncio.Future[Any]] = [taking, stopped]
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if not taking.done():
        taking.cancel()
        return False
    if stopped.done():
        places.release()
        return False
    return True
