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
