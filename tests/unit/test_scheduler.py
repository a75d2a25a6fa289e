"""The scheduler never lets a pair vanish: a defect becomes an `internal` dead letter."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.pair import Pair
from dispatcher.engine.scheduler import Scheduler
from dispatcher.events import Event, Record
from dispatcher.hooks.model import Hook
from dispatcher.metrics import Metrics
from dispatcher.outcomes import Outcome, Source


class Writer:
    def __init__(self) -> None:
        self.written: list[Any] = []

    async def write(self, result: Any, record: Record, done: Any) -> None:
        self.written.append(result)
        done()


def test_a_pair_whose_client_cannot_be_built_is_dead_lettered_as_internal() -> None:
    hook = Hook.from_dict({"id": "h", "events": ["x"], "url": "https://h.example.com/"})
    record = Record("t", 0, 7, None, b"{}", ())
    pair = Pair(record, Event("e1", "x", "/s"), hook, Source("t", 0, 7), "msg_1")
    writer = Writer()
    finished: list[Pair] = []

    def broken_client(_hook: Hook) -> Any:
        raise RuntimeError("no client for you")

    def finisher(p: Pair) -> Any:
        return lambda: finished.append(p)

    class Sink:
        def __init__(self) -> None:
            self.writer = writer

        def finish(self, p: Pair) -> Any:
            return finisher(p)

    async def run() -> None:
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), (), 0), broken_client)
        scheduler.start([pair], Sink())  # type: ignore[arg-type]
        await scheduler.drain(5)

    asyncio.run(run())
    (outcome,) = writer.written
    assert isinstance(outcome, Outcome)
    assert outcome.outcome == "dead_lettered"
    assert outcome.error_kind == "internal"
    assert "no client for you" in (outcome.error or "")
    assert finished == [pair]


def test_abandon_cuts_only_the_sinks_pairs_of_the_partitions_that_left() -> None:
    hook = Hook.from_dict({"id": "h", "events": ["x"], "url": "https://h.example.com/"})

    def pair(partition: int, offset: int) -> Pair:
        record = Record("t", partition, offset, None, b"{}", ())
        return Pair(
            record, Event(f"e{partition}-{offset}", "x", "/s"), hook, Source("t", 0, 0), "m"
        )

    class Hanging:
        """A client whose every request waits until the test lets it go."""

        def __init__(self) -> None:
            self.release = asyncio.Event()
            self.sent = 0

        async def send(self, _request: Any) -> Any:
            self.sent += 1
            await self.release.wait()
            raise RuntimeError("released")  # ends as an `internal` dead letter: still a result

    class Sink:
        def __init__(self) -> None:
            self.writer = Writer()

        def finish(self, _p: Pair) -> Any:
            return lambda: None

    async def run() -> tuple[int, Sink, Sink]:
        client = Hanging()
        scheduler = Scheduler(Deliverer(Metrics(CollectorRegistry()), (), 0), lambda _h: client)
        leaving, staying = Sink(), Sink()
        scheduler.start([pair(0, 1), pair(0, 2), pair(1, 1)], leaving)  # type: ignore[arg-type]
        scheduler.start([pair(0, 1)], staying)  # type: ignore[arg-type]

        async def all_sent() -> None:
            while client.sent < 4:
                await asyncio.sleep(0)

        await asyncio.wait_for(all_sent(), 5)
        cut = await scheduler.abandon(leaving, {("t", 0)})  # type: ignore[arg-type]
        client.release.set()
        await scheduler.drain(5)
        return cut, leaving, staying

    cut, leaving, staying = asyncio.run(run())
    assert cut == 2
    assert [o.event_id for o in leaving.writer.written] == ["e1-1"]
    assert [o.event_id for o in staying.writer.written] == ["e0-1"]
