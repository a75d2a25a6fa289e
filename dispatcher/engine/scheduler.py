"""The delivery loop's side: start pairs as tasks, keep per-key order, write each result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from dispatcher.engine.deliver import Deliverer
from dispatcher.errors import Withdrawn
from dispatcher.http.sender import HookClient
from dispatcher.kafka.writer import OutcomeWriter
from dispatcher.model.hook import Hook
from dispatcher.model.pair import Pair
from dispatcher.pipeline.retry import Handoff, Result

log = logging.getLogger(__name__)
CANCEL_GRACE = 2.0  # seconds a cancelled delivery gets to end at the drain deadline
ClientFor = Callable[[Hook], HookClient]
Partition = tuple[str, int]


class Sink(Protocol):
    """Where a pair's result goes: the writer of the consumer it came from, and its completion."""

    writer: OutcomeWriter

    def finish(self, pair: Pair) -> Callable[[], None]: ...


class Scheduler:
    """Runs every submitted pair to its end on the event loop; one task per pair."""

    def __init__(self, deliverer: Deliverer, client_for: ClientFor) -> None:
        self.deliverer = deliverer
        self.client_for = client_for
        self.tasks: dict[asyncio.Task[None], tuple[Sink, Partition]] = {}  # running pairs
        self.withdrawn: set[tuple[int, Partition]] = set()  # (id(sink), partition) leaving
        self._key_locks: dict[tuple[str, bytes], asyncio.Lock] = {}
        self._key_users: dict[tuple[str, bytes], int] = {}

    def start(self, pairs: list[Pair], sink: Sink) -> None:
        """Start delivering `pairs` (in order: per-key order follows the order of start).

        A pair whose hook's circuit is open is handed off to its retry tier here and now, with
        no task, together with the others of its hook (a tier bundle): a dead hook must cost
        the hooks beside it as little CPU as it can."""
        held_back, client_for, writer = self.deliverer.held_back, self.client_for, sink.writer
        handoffs: list[tuple[Handoff, Callable[[], None]]] = []
        for pair in pairs:
            try:
                result = held_back(pair, client_for(pair.hook))
            except Exception:  # a defect: the pair's task dead-letters it as `internal`
                result = None
            if result is None:
                self._spawn(self._run(pair, sink), pair, sink)
            elif isinstance(result, Handoff):
                handoffs.append((result, sink.finish(pair)))
            else:  # an expiry (two records)
                self._spawn(writer.write(result, pair.record, sink.finish(pair)), pair, sink)
        if handoffs:  # those the producer's queue had no room for await room in a task
            for handoff, done in writer.hand_off(handoffs):
                pair = handoff.pair
                self._spawn(writer.write(handoff, pair.record, done), pair, sink)

    def _spawn(self, work: Coroutine[Any, Any, None], pair: Pair, sink: Sink) -> None:
        task = asyncio.create_task(work)
        self.tasks[task] = (sink, (pair.record.topic, pair.record.partition))
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        del self.tasks[task]

    async def release(self, sink: Sink, partitions: set[Partition], wait: float) -> int:
        """Let go of the pairs `sink` took from `partitions` (revoked or lost: their new owner
        delivers them again). None of them starts another attempt; those sending get up to
        `wait` seconds to end; the rest are cut. Returns how many were cut."""
        marks = {(id(sink), p) for p in partitions}
        self.withdrawn |= marks
        try:
            mine = [t for t, (s, p) in self.tasks.items() if s is sink and p in partitions]
            if mine and wait > 0:
                await asyncio.wait(mine, timeout=wait)
            doomed = [t for t in mine if not t.done()]
            await _cut(doomed)
            return len(doomed)
        finally:
            self.withdrawn -= marks

    async def _run(self, pair: Pair, sink: Sink) -> None:
        key = pair.ordering_key
        if key is None:
            await self._deliver(pair, sink)
            return
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        self._key_users[key] = self._key_users.get(key, 0) + 1
        try:
            async with lock:
                await self._deliver(pair, sink)
        finally:
            self._key_users[key] -= 1
            if self._key_users[key] == 0:
                del self._key_users[key]
                del self._key_locks[key]

    async def _deliver(self, pair: Pair, sink: Sink) -> None:
        withdrawn, mark = self.withdrawn, (id(sink), (pair.record.topic, pair.record.partition))
        try:
            result: Result = await self.deliverer.deliver(
                pair, self.client_for(pair.hook), lambda: mark not in withdrawn
            )
        except asyncio.CancelledError:
            raise
        except Withdrawn:
            return  # its partition left: the new owner delivers it, no outcome from here
        except Exception as exc:  # a defect must neither kill the worker nor stall the partition
            result = self.deliverer.crashed(pair, exc)  # logged there
        await sink.writer.write(result, pair.record, sink.finish(pair))

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` for running pairs; cancel the rest. Returns how many were cut."""
        if not self.tasks:
            return 0
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        await _cut(list(pending))
        return len(pending)


async def _cut(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and give them `CANCEL_GRACE` seconds to end: a task that is still running
    then is a defect (cancelled, it should end at its next await), logged and left behind
    rather than waited for, so a stop or a rebalance is never held up by it."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    ended, stubborn = await asyncio.wait(tasks, timeout=CANCEL_GRACE)
    for task in ended:
        if not task.cancelled():
            task.exception()  # retrieved: a task that failed as it ended is not news
    for task in stubborn:
        log.error("a delivery did not end when cancelled; left behind: %r", task)
