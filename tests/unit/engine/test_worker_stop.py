"""A stopping worker waits for its consumer threads only as long as their closes are bounded:
one stuck past that (in a Kafka client call that does not return) is left behind, its stack
logged, and the worker exits with a Kafka error instead of hanging. So is a delivery that does
not end when the drain cancels it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine import scheduler as scheduler_module
from dispatcher.engine import worker as worker_module
from dispatcher.engine.assembly import Parts
from dispatcher.engine.scheduler import Scheduler
from dispatcher.engine.worker import Worker
from dispatcher.metrics import Metrics
from dispatcher.pipeline.match import HookIndex


class _Scheduler:
    async def drain(self, timeout: float) -> int:
        return 0


class _Pool:
    closed = False

    async def aclose(self) -> None:
        self.closed = True


class _Intake:
    stopped = False

    def stop(self) -> None:
        self.stopped = True


def _parts() -> Parts:
    return Parts(pool=_Pool(), deadline=[], scheduler=_Scheduler(), intakes=[_Intake()])  # type: ignore[arg-type]


def _worker() -> Worker:
    settings = Settings(drain_timeout=0.0)
    return Worker(settings, HookIndex([]), metrics=Metrics(CollectorRegistry()))


def _stuck_in_a_client_call(release: threading.Event) -> None:
    release.wait()  # stands for a librdkafka call that does not return


def test_a_consumer_thread_stuck_past_its_bounded_close_is_left_behind_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker_module, "STOP_GRACE", 0.0)
    release = threading.Event()
    stuck = threading.Thread(
        target=_stuck_in_a_client_call, args=(release,), name="consumer-1", daemon=True
    )
    done = threading.Thread(target=lambda: None, name="consumer-0", daemon=True)
    stuck.start()
    done.start()
    parts = _parts()
    try:
        with caplog.at_level(logging.ERROR, logger="dispatcher.engine.worker"):
            asyncio.run(_worker()._shut_down(parts, [done, stuck]))
    finally:
        release.set()
        stuck.join()

    assert parts.stuck == [stuck]
    assert parts.pool.closed  # type: ignore[attr-defined]
    assert all(intake.stopped for intake in parts.intakes)  # type: ignore[attr-defined]
    [record] = caplog.records
    assert "consumer-1 did not finish by the stop deadline" in record.getMessage()
    assert "_stuck_in_a_client_call" in record.getMessage()  # where it is: its stack


def test_threads_that_finish_are_waited_for_and_none_is_left_behind() -> None:
    finished = threading.Event()

    def consume() -> None:
        finished.set()

    thread = threading.Thread(target=consume, name="consumer-0", daemon=True)
    thread.start()
    parts = _parts()

    asyncio.run(_worker()._shut_down(parts, [thread]))

    assert finished.is_set()
    assert not thread.is_alive()
    assert parts.stuck == []


def test_a_delivery_that_does_not_end_when_cancelled_is_left_behind_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(scheduler_module, "CANCEL_GRACE", 0.0)

    async def scenario() -> tuple[int, asyncio.Task[None]]:
        release = asyncio.Event()
        started = [asyncio.Event(), asyncio.Event()]

        async def stubborn() -> None:  # a defect: it swallows its cancellation
            started[0].set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await release.wait()

        async def polite() -> None:
            started[1].set()
            await asyncio.Event().wait()

        scheduler = Scheduler(None, None)  # type: ignore[arg-type]
        tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
        for task in tasks:
            scheduler.tasks[task] = (None, ("t", 0), None)  # type: ignore[assignment]
        for event in started:
            await event.wait()  # both are running, each at its await
        cut = await scheduler.drain(0.0)
        left = tasks[0]
        assert not left.done()
        assert tasks[1].cancelled()
        release.set()
        await left
        return cut, left

    with caplog.at_level(logging.ERROR, logger="dispatcher.engine.scheduler"):
        cut, _ = asyncio.run(scenario())

    assert cut == 2
    [record] = caplog.records
    assert "did not end when cancelled" in record.getMessage()


def test_the_parts_beside_the_consumers_close_while_they_do_and_by_the_one_stop_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hook health's withdrawal (5 s with the broker gone) waited for the consumers' closes
    (7 s with the broker gone) to end before it began: a stop took their sum."""
    began, seen = threading.Event(), []
    given: list[float] = []

    def closing_consumer() -> None:  # its close ends once the part beside it has begun
        seen.append(began.wait(timeout=30))

    async def beside(stop_by: float) -> None:
        given.append(stop_by)
        began.set()

    thread = threading.Thread(target=closing_consumer, name="consumer-0", daemon=True)
    thread.start()
    parts = _parts()

    with caplog.at_level(logging.INFO, logger="dispatcher.engine.worker"):
        asyncio.run(_worker()._shut_down(parts, [thread], {"hook health": beside}))

    assert seen == [True]  # the withdrawal began while the consumer was still closing
    assert given == [parts.deadline[0] + worker_module.STOP_GRACE]
    [said] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stop:")]
    assert said.startswith("stop: drained in ")
    assert "(consumers " in said
    assert ", hook health " in said


def test_a_part_that_fails_to_close_fails_the_stop_once_the_others_closed() -> None:
    closed: list[str] = []
    failed = asyncio.Event()

    async def failing(_stop_by: float) -> None:
        failed.set()
        raise RuntimeError("closing failed")

    async def other(_stop_by: float) -> None:
        await failed.wait()  # it ends after the failure
        closed.append("other")

    beside = {"failing": failing, "other": other}
    with pytest.raises(RuntimeError, match="closing failed"):
        asyncio.run(_worker()._shut_down(_parts(), [], beside))
    assert closed == ["other"]


class _FailedForGood:
    """An intake loop that stopped by itself (a Kafka client of it failed for good), before
    the worker's stop set a drain deadline."""

    deadline: float | None = None

    def run(self, drain_deadline: Callable[[], float]) -> None:
        self.deadline = drain_deadline()


def test_a_consumer_thread_that_stopped_by_itself_drains_to_now() -> None:
    """There is no drain deadline yet: asking for it raised IndexError on the consumer thread,
    which then never drained, left its group or closed its consumer."""
    intake = _FailedForGood()
    before = time.monotonic()

    _worker()._consume(intake, _parts())  # type: ignore[arg-type]

    assert intake.deadline is not None
    assert before <= intake.deadline <= time.monotonic()
