"""A worker's /healthz tells a hung part: the delivery loop and each consumer thread beat as
they turn, and /healthz answers 503 naming the part silent past `liveness_timeout`, 200 again
once it turns; a part that stopped, or a worker stopping, is never stalled."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from fake_clock import Clock
from kafka_fakes import GroupConsumer, KeepingProducer
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.consumer import ConsumerLoop
from dispatcher.engine.liveness import Heartbeats, LoopBeat
from dispatcher.engine.status import StatusServer
from dispatcher.engine.wiring import Wiring
from dispatcher.engine.worker import Worker
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.match import HookIndex

SETTINGS = Settings()
BOUND = 10.0  # seconds a test waits for a condition, at most


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition`, up to BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"not within {BOUND:g}s: {what}"
        threading.Event().wait(0.005)


def test_a_part_is_stalled_once_silent_past_the_bound_and_alive_again_at_its_next_beat() -> None:
    clock = Clock()
    heartbeats = Heartbeats(120.0, clock)
    assert heartbeats.stalled() == {}  # no part turns yet (a worker waiting for Kafka at start)
    loop, consumer = heartbeats.pulse_of("delivery loop"), heartbeats.pulse_of("consumer-0")
    clock.advance(120.0)
    assert heartbeats.stalled() == {}  # at the bound, not past it
    loop.beat()
    clock.advance(0.5)
    assert heartbeats.stalled() == {"consumer-0": 120.5}
    consumer.beat()
    assert heartbeats.stalled() == {}


def test_a_part_that_rests_and_a_worker_that_stops_watching_are_never_stalled() -> None:
    clock = Clock()
    heartbeats = Heartbeats(1.0, clock)
    consumer, loop = heartbeats.pulse_of("consumer-0"), heartbeats.pulse_of("delivery loop")
    consumer.rest()  # its loop ended: the drain, leave and close are the stop's to bound
    clock.advance(3600.0)
    assert heartbeats.stalled() == {"delivery loop": 3600.0}
    heartbeats.stop_watching()
    assert heartbeats.stalled() == {}
    loop.beat()
    clock.advance(3600.0)
    assert heartbeats.stalled() == {}


def test_a_worker_asked_to_stop_is_alive_whatever_its_parts_do() -> None:
    worker = Worker(Settings(liveness_timeout=1.0), HookIndex([]), Metrics(CollectorRegistry()))
    clock = Clock()
    worker.heartbeats.clock = clock
    worker.heartbeats.pulse_of("consumer-0")
    clock.advance(2.0)
    assert worker.heartbeats.stalled() == {"consumer-0": 2.0}
    worker.request_stop()  # its drain: parts end their turns, the stop watchdog bounds it
    assert worker.heartbeats.stalled() == {}


@pytest.fixture
def status() -> Iterator[tuple[StatusServer, dict[str, float]]]:
    """A status server on loopback whose stalled parts the test sets."""
    stalled: dict[str, float] = {}
    server = StatusServer(
        0, CollectorRegistry(), lambda: True, host="127.0.0.1", stalled=lambda: dict(stalled)
    )
    server.start()
    yield server, stalled
    server.stop()


def test_healthz_is_503_naming_the_stalled_parts_and_200_when_none_is(
    status: tuple[StatusServer, dict[str, float]],
) -> None:
    server, stalled = status
    url = f"http://127.0.0.1:{server.port}/healthz"
    answer = httpx.get(url, timeout=BOUND, trust_env=False)
    assert (answer.status_code, answer.json()) == (200, {"status": "alive"})
    stalled["consumer-1"] = 130.04
    answer = httpx.get(url, timeout=BOUND, trust_env=False)
    assert answer.status_code == 503
    assert answer.json() == {"status": "stalled", "stalled": {"consumer-1": 130.0}}
    stalled.clear()
    assert httpx.get(url, timeout=BOUND, trust_env=False).status_code == 200


def test_a_blocked_delivery_loop_is_stalled_and_alive_again_once_it_turns() -> None:
    clock = Clock()
    heartbeats = Heartbeats(0.04, clock)  # beats every 10 ms of the loop's own time
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="delivery loop", daemon=True)
    runner.start()

    async def start() -> LoopBeat:
        return LoopBeat.start(heartbeats, "delivery loop")

    async def stop(beating: LoopBeat) -> None:
        beating.cancel()

    beating = asyncio.run_coroutine_threadsafe(start(), loop).result(BOUND)
    entered, release = threading.Event(), threading.Event()

    def hang() -> None:  # stands for a deadlock, or a C call that never returns
        entered.set()
        release.wait(BOUND)

    try:
        loop.call_soon_threadsafe(hang)
        assert entered.wait(BOUND)
        clock.advance(1.0)
        assert heartbeats.stalled() == {"delivery loop": 1.0}
        release.set()
        until(lambda: heartbeats.stalled() == {}, "the loop beats again")
        asyncio.run_coroutine_threadsafe(stop(beating), loop).result(BOUND)
        clock.advance(60.0)
        assert heartbeats.stalled() == {}  # cancelled at the worker's stop, it rests
    finally:
        release.set()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(BOUND)
        loop.close()


class HangingConsumer(GroupConsumer):
    """A group consumer whose `consume` hangs, once `hang` is set, until `release` is."""

    def __init__(self) -> None:
        super().__init__([(SETTINGS.topics.events[0], 0)], [])
        self.hang, self.entered, self.release = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )

    def consume(self, n: int, timeout: float) -> list[Any]:
        if self.hang.is_set() and not self.release.is_set():
            self.entered.set()
            self.release.wait(BOUND)  # stands for a librdkafka call that does not return
        return super().consume(n, timeout)


def test_a_consumer_thread_hung_in_a_client_call_is_stalled_and_rests_once_it_stops() -> None:
    clock = Clock()
    heartbeats = Heartbeats(120.0, clock)
    consumer, producer = HangingConsumer(), KeepingProducer()
    metrics = Metrics(CollectorRegistry())

    def release(_keys: Any, _wait: float) -> Future[int]:
        done: Future[int] = Future()
        done.set_result(0)
        return done

    wiring = Wiring(
        SETTINGS, producer, outcome_writer(producer, SETTINGS, metrics), lambda: HookIndex([]),
        decode, metrics, lambda _pairs: None, release, list(SETTINGS.topics.events),
    )  # fmt: skip
    intake = ConsumerLoop(consumer, wiring)
    intake.pulse = heartbeats.pulse_of("consumer-0")
    consumer.hang.set()
    thread = threading.Thread(target=intake.run, args=(time.monotonic,), daemon=True)
    thread.start()
    try:
        assert consumer.entered.wait(BOUND)
        clock.advance(121.0)
        assert heartbeats.stalled() == {"consumer-0": 121.0}
        consumer.release.set()
        until(lambda: heartbeats.stalled() == {}, "the consumer thread turns again")
    finally:
        consumer.release.set()
        intake.stop()
        thread.join(BOUND)
    assert not thread.is_alive()
    clock.advance(3600.0)
    assert heartbeats.stalled() == {}  # it stopped: its drain and close are the stop's
