"""The delivery loop's side: start pairs as tasks, keep per-key order, write each result."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
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
    """Runs every submitted pair to its end on the event loop; one task per pair, started when
    its hook's client has a slot for it (until then the pair is an offer to its slots)."""

    def __init__(
        self,
        deliverer: Deliverer,
        client_for: ClientFor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deliverer = deliverer
        self.client_for = client_for
        self.clock = clock  # monotonic seconds, as the `until` of `start` is given in
        # running pairs: each task's sink, partition, and client (if it counts the pair)
        self.tasks: dict[asyncio.Task[None], tuple[Sink, Partition, HookClient | None]] = {}
        self.offers: set[_Offer] = set()  # pairs waiting for a slot
        self.withdrawn: set[tuple[int, Partition]] = set()  # (id(sink), partition) leaving
        self._key_locks: dict[tuple[str, bytes], asyncio.Lock] = {}
        self._key_users: dict[tuple[str, bytes], int] = {}
        # the loop `start` last ran on, where its pairs' tasks start (asked once a batch: in
        # Python 3.11, asking which loop runs is a getpid() system call each time)
        self._loop: asyncio.AbstractEventLoop | None = None
        # set once `drain` has ended: the records of the attempts it cut are written by then,
        # and a consumer thread flushing its producer for the last time waits for it
        self.drained = threading.Event()

    def start(self, pairs: list[Pair], sink: Sink, until: float | None = None) -> None:
        """Start delivering `pairs` (in order: per-key order follows the order of start).

        A pair whose hook's circuit is open is handed off to its retry tier here and now, with
        no task, together with the others of its hook (a tier bundle): a dead hook must cost
        the hooks beside it as little CPU as it can.

        `until` (queue mode; `clock` seconds): no attempt of these pairs starts from then on,
        and none of them gets an end here any more (their records' lock is running out): those
        not yet started then are left to `sink`, as a released partition's are, which hands
        them to a retry tier or gives their records up. One clock read here, one per attempt."""
        self._loop = asyncio.get_running_loop()
        if until is not None and self.clock() >= until:
            return  # (the consumer thread was stalled, or this loop was, since they came in)
        held_back, client_for, writer = self.deliverer.held_back, self.client_for, sink.writer
        handoffs: list[tuple[Handoff, Callable[[], None]]] = []
        for pair in pairs:
            if pair.hook.unusable is not None:  # a hook this worker cannot deliver: no client
                ended = self.deliverer.unusable(pair)
                self._spawn(writer.write(ended, pair.record, sink.finish(pair)), pair, sink)
                continue
            client: HookClient | None = None
            try:
                client = client_for(pair.hook)
                result = held_back(pair, client)
            except Exception:  # a defect: the pair's task dead-letters it as `internal`
                result = None
            if result is None:
                if client is None or pair.ordering_key is not None:  # the key's lock first
                    self._spawn(self._run(pair, sink, client, until), pair, sink, client)
                else:
                    offer = _Offer(self, pair, sink, client, until)
                    self.offers.add(offer)
                    client.slots.offer(offer)
            elif isinstance(result, Handoff):
                handoffs.append((result, sink.finish(pair)))
            else:  # an expiry (two records)
                self._spawn(writer.write(result, pair.record, sink.finish(pair)), pair, sink)
        if handoffs:  # those the producer's queue had no room for await room in a task
            for handoff, done in writer.hand_off(handoffs):
                pair = handoff.pair
                self._spawn(writer.write(handoff, pair.record, done), pair, sink)

    def _spawn(
        self,
        work: Coroutine[Any, Any, None],
        pair: Pair,
        sink: Sink,
        client: HookClient | None = None,
    ) -> asyncio.Task[None]:
        """A task for `work`; with `client`, the pair's delivery, which the client counts as
        running on it until the task ends (the hook's client pool closes a superseded
        definition's client only once nothing runs on it)."""
        assert self._loop is not None  # pairs come in through `start`
        task = self._loop.create_task(work)
        self.tasks[task] = (sink, (pair.record.topic, pair.record.partition), client)
        if client is not None:
            client.taken()
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        client = self.tasks.pop(task)[2]
        if client is not None:
            client.ended()

    async def release(self, sink: Sink, partitions: set[Partition], wait: float) -> int:
        """Let go of the pairs `sink` took from `partitions` (revoked or lost: their new owner
        delivers them again). None of them starts another attempt; those sending get up to
        `wait` seconds to end; the rest are cut. Returns how many were cut."""
        marks = {(id(sink), p) for p in partitions}
        self.withdrawn |= marks
        self._drop_offers(lambda offer: offer.sink is sink and offer.partition in partitions)
        try:
            mine = [t for t, (s, p, _) in self.tasks.items() if s is sink and p in partitions]
            if mine and wait > 0:
                await asyncio.wait(mine, timeout=wait)
            doomed = [t for t in mine if not t.done()]
            await _cut(doomed)
            return len(doomed)
        finally:
            self.withdrawn -= marks

    async def _run(
        self, pair: Pair, sink: Sink, client: HookClient | None, until: float | None
    ) -> None:
        key = pair.ordering_key
        if key is None:
            await self._deliver(pair, sink, client, until)
            return
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        self._key_users[key] = self._key_users.get(key, 0) + 1
        try:
            async with lock:
                await self._deliver(pair, sink, client, until)
        finally:
            self._key_users[key] -= 1
            if self._key_users[key] == 0:
                del self._key_users[key]
                del self._key_locks[key]

    async def _deliver(
        self, pair: Pair, sink: Sink, client: HookClient | None, until: float | None = None
    ) -> None:
        """Deliver `pair` on `client`, the one it was started with (None: it could not be
        had; asked again here, its failure dead-letters the pair as `internal`); no attempt
        starts once its partition is withdrawn or `until` has come (`start`)."""
        withdrawn, mark = self.withdrawn, (id(sink), (pair.record.topic, pair.record.partition))
        clock = self.clock

        def wanted() -> bool:
            return mark not in withdrawn and (until is None or clock() < until)

        try:
            result: Result = await self.deliverer.deliver(
                pair, client or self.client_for(pair.hook), wanted
            )
        except asyncio.CancelledError:
            raise
        except Withdrawn:
            return  # its partition left, or its lock is ending: no outcome from here
        except Exception as exc:  # a defect must neither kill the worker nor stall the partition
            result = self.deliverer.crashed(pair, exc)  # logged there
        rest = sink.writer.put(result, pair.record, sink.finish(pair))
        if rest is not None:  # the producer's queue is full: wait for its room
            await rest

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` for running pairs and those waiting for a slot (started as
        slots free); then cut the rest: cancelled, or never started. Returns how many were
        cut; `drained` is set then (the records of the attempts cut are written by then)."""
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while self.tasks and (left := deadline - loop.time()) > 0:
                await asyncio.wait(set(self.tasks), timeout=left)  # and those started meanwhile
            unstarted = self._drop_offers(lambda _offer: True)
            pending = list(self.tasks)
            await _cut(pending)
            return len(pending) + unstarted
        finally:
            self.drained.set()

    def _drop_offers(self, which: Callable[[_Offer], bool]) -> int:
        """Drop the offers `which` picks (never started: no end from here). How many."""
        dropped = [offer for offer in self.offers if which(offer)]
        for offer in dropped:
            offer.dropped = True
            self.offers.remove(offer)
        return len(dropped)


class _Offer:
    """A pair waiting for a slot of its hook's client, with no task yet (`Slots.offer`): called
    when a slot is handed to it, it starts the pair's task, unless it was dropped meanwhile."""

    __slots__ = ("client", "dropped", "pair", "scheduler", "sink", "until")

    def __init__(
        self,
        scheduler: Scheduler,
        pair: Pair,
        sink: Sink,
        client: HookClient,
        until: float | None,
    ) -> None:
        self.scheduler = scheduler
        self.pair = pair
        self.sink = sink
        self.client = client
        self.until = until
        self.dropped = False

    @property
    def partition(self) -> Partition:
        return (self.pair.record.topic, self.pair.record.partition)

    def __call__(self) -> asyncio.Task[None] | None:
        if self.dropped:
            return None
        scheduler, pair, sink, client = self.scheduler, self.pair, self.sink, self.client
        scheduler.offers.remove(self)  # (no ordering key: see `start`, no key lock to take)
        work = scheduler._deliver(pair, sink, client, self.until)
        return scheduler._spawn(work, pair, sink, client)


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
