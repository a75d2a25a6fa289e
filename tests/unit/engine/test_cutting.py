"""A request cut short under way (a drain deadline, a revoke) leaves an attempt record saying
so, numbered after the pair's answered attempts, with no answer, secret or body; a request
that was waiting for a slot leaves none; hook health hears of neither; no outcome is written."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from kafka_fakes import KeepingProducer
from prometheus_client import CollectorRegistry
from test_consumer_faults import consumer_loop
from test_scheduler import Writer
from test_share import ShareConsumer
from test_share import make_loop as make_share_loop

from dispatcher.engine.attempts import AttemptRecorder
from dispatcher.engine.consumer import ConsumerLoop
from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.scheduler import Scheduler
from dispatcher.engine.share import ShareLoop
from dispatcher.engine.wiring import CUT_WAIT
from dispatcher.http import sender
from dispatcher.http.sender import CUT_SHORT, Attempt, HookClient, cut_attempt
from dispatcher.kafka.attempts import AttemptWriter
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Source, idempotency_key
from dispatcher.model.pair import Pair

TOKEN = "tok-cut-41aa-secret"


class Producer:
    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []

    def produce(self, topic: str, *, value: bytes, key: bytes, on_delivery: Any) -> None:
        self.values.append(json.loads(value))


class Sink:
    def __init__(self) -> None:
        self.writer = Writer(room=False)  # hands no pair off: what a hand-off is given comes back

    def finish(self, _pair: Pair) -> Any:
        return lambda: None


class Receiver:
    """A mock transport's handler: `answers` first (one a request), then hangs every request
    (the transport's request is counted in `sent` first)."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if self.answers:
            return self.answers.pop(0)
        await asyncio.Event().wait()  # never answered: only a cut ends it
        raise AssertionError("unreachable")


def erp_hook(concurrency: int = 5) -> Hook:
    return Hook.from_dict(
        {
            "id": "erp",
            "events": ["order.*"],
            "url": "https://erp.example/in?apikey=k-77",
            "auth": {"type": "bearer", "token": TOKEN},
            "timeout": "60s",
            "concurrency": concurrency,
        }
    )


def pair_of(hook: Hook, offset: int) -> Pair:
    record = Record("events", 0, offset, b"k", b"{}", ())
    event = Event(id=f"ev-{offset}", type="order.paid", source="/o", data={"card": "4111"})
    return Pair(record, event, hook, Source("events", 0, offset), idempotency_key(event, "erp"))


class Parts:
    """A scheduler whose deliverer writes attempt records as a worker's does (`assembly`), and
    tells a stand-in for hook health of each attempt."""

    def __init__(self, receiver: Receiver, hook: Hook, local_retries: int = 0) -> None:
        self.producer = Producer()
        self.health: list[tuple[int, Attempt]] = []
        recorder = AttemptRecorder(
            AttemptWriter(self.producer, "attempts", Metrics(CollectorRegistry())),
            asyncio.get_running_loop(),
        )
        deliverer = Deliverer(
            Metrics(CollectorRegistry()),
            (),
            local_retries,
            observers=[lambda _p, n, a: self.health.append((n, a)), recorder],
            cut_observers=[recorder.cut],
        )
        client = HookClient(hook, httpx.MockTransport(receiver))
        self.scheduler = Scheduler(deliverer, lambda _hook: client)


async def until(condition: Any) -> None:
    """Turns of the loop until `condition()` holds (bounded by the test's timeout)."""
    while not condition():
        await asyncio.sleep(0)


def test_a_drain_deadline_cutting_a_request_under_way_writes_its_attempt_record() -> None:
    hook = erp_hook(concurrency=1)  # the second pair waits for the slot: it sends nothing
    receiver = Receiver()
    sink = Sink()

    async def run() -> tuple[Parts, int]:
        parts = Parts(receiver, hook)
        parts.scheduler.start([pair_of(hook, 1), pair_of(hook, 2)], sink)  # type: ignore[arg-type]
        await until(lambda: len(receiver.sent) == 1)
        cut = await parts.scheduler.drain(0)
        return parts, cut

    parts, cut = asyncio.run(run())

    assert cut == 2
    assert parts.scheduler.drained.is_set()
    (record,) = parts.producer.values  # written by the time the drain ended
    assert (record["event_id"], record["hook_id"], record["attempt"]) == ("ev-1", "erp", 1)
    assert record["error_kind"] == "cut"
    assert record["error"].startswith("cut short before its answer was read")
    assert (record["http_status"], record["response_excerpt"]) == (None, None)
    assert record["latency_ms"] >= 0
    assert record["idempotency_key"] == idempotency_key(pair_of(hook, 1).event, "erp")
    text = json.dumps(record)
    assert TOKEN not in text
    assert "erp.example" not in text
    assert "k-77" not in text
    assert "4111" not in text  # no body
    assert parts.health == []  # a cut says nothing of the hook's health
    assert sink.writer.written == []  # nor is it an end of the pair here


def test_a_revoke_cutting_a_retry_under_way_numbers_its_record_after_the_answered_one() -> None:
    hook = erp_hook()
    receiver = Receiver(httpx.Response(503, content=b"busy"))  # then the retry hangs
    sink = Sink()

    async def run() -> tuple[Parts, int]:
        parts = Parts(receiver, hook, local_retries=3)
        parts.scheduler.start([pair_of(hook, 1)], sink)  # type: ignore[arg-type]
        await until(lambda: len(receiver.sent) == 2)
        cut = await parts.scheduler.release(sink, {("events", 0)}, 0.0)  # type: ignore[arg-type]
        return parts, cut

    parts, cut = asyncio.run(run())

    assert cut == 1
    values = parts.producer.values
    assert [(r["attempt"], r["error_kind"], r["http_status"]) for r in values] == [
        (1, "http_status", 503),
        (2, "cut", None),
    ]
    assert [n for n, _attempt in parts.health] == [1]  # the answered attempt only
    assert sink.writer.written == []


class Idle:
    """A process with CPU to spare: a send steps back for the pairs its slot woke."""

    def saturated(self) -> bool:
        return False


async def cancellation_of(send: Any) -> asyncio.CancelledError:
    """The cancellation `send` raised as its task was cut (as the pair's task sees it)."""
    try:
        await send
    except asyncio.CancelledError as exc:
        return exc
    raise AssertionError("not cut")


def test_a_send_cut_while_waiting_for_a_slot_carries_no_attempt() -> None:
    hook = erp_hook(concurrency=1)
    receiver = Receiver()

    async def run() -> list[asyncio.CancelledError]:
        client = HookClient(hook, httpx.MockTransport(receiver))
        sending = asyncio.create_task(cancellation_of(client.send(_request(hook))))
        await until(lambda: len(receiver.sent) == 1)
        waiting = asyncio.create_task(cancellation_of(client.send(_request(hook))))
        await until(lambda: not client.slots.idle() and len(client.slots._waiters) == 1)
        sending.cancel()
        waiting.cancel()
        return [await sending, await waiting]

    under_way, queued = asyncio.run(run())
    attempt = cut_attempt(under_way)
    assert attempt is not None
    assert attempt.verdict is CUT_SHORT
    assert cut_attempt(queued) is None


def test_a_send_cut_after_its_answer_came_carries_that_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = erp_hook(concurrency=1)
    answer = asyncio.Event()

    async def receiver(_request: httpx.Request) -> httpx.Response:
        await answer.wait()
        return httpx.Response(200, content=b"ok")

    stepping_back = asyncio.Event()

    async def held_back() -> None:  # the step back of a send whose slot woke another
        stepping_back.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(sender, "_after_waiters", held_back)

    async def run() -> asyncio.CancelledError:
        client = HookClient(hook, httpx.MockTransport(receiver), cpu=Idle())  # type: ignore[arg-type]
        answered = asyncio.create_task(cancellation_of(client.send(_request(hook))))
        waiting = asyncio.create_task(client.send(_request(hook)))  # answered in its turn
        await until(lambda: len(client.slots._waiters) == 1)
        answer.set()
        await stepping_back.wait()
        answered.cancel()
        await waiting
        return await answered

    attempt = cut_attempt(asyncio.run(run()))
    assert attempt is not None
    assert (attempt.verdict.ok, attempt.verdict.status) == (True, 200)


def _request(hook: Hook) -> Any:
    from dispatcher.pipeline.request import build_request

    event = pair_of(hook, 1).event
    return build_request(hook, event, idempotency_key(event, hook.id))


class LoggingProducer(KeepingProducer):
    """A producer saying in `log` what it was asked, in order."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def produce(self, topic: str, **record: Any) -> None:
        self.log.append(f"produce {topic}")
        super().produce(topic, **record)

    def flush(self, timeout: float = 0) -> int:
        self.log.append("flush")
        return super().flush(timeout)


def stopping_loops(log: list[str]) -> list[tuple[ConsumerLoop | ShareLoop, LoggingProducer]]:
    """The input's loops of either mode, told to stop, over producers logging into `log`."""
    group_producer, share_producer = LoggingProducer(log), LoggingProducer(log)
    group = consumer_loop([[]], producer=group_producer)[0]
    share = make_share_loop(ShareConsumer([]), [], producer=share_producer)[0]
    return [(group, group_producer), (share, share_producer)]


@pytest.mark.parametrize("mode", [0, 1], ids=["group", "share"])
def test_a_stopping_loop_flushes_last_what_the_delivery_loop_wrote_as_it_cut(mode: int) -> None:
    log: list[str] = []
    loop, producer = stopping_loops(log)[mode]

    def drained(_seconds: float) -> bool:  # its drain ends now, having cut a request
        producer.produce("attempts", value=b"{}", key=b"ev-1", on_delivery=lambda *_: None)
        return True

    loop.drained = drained
    loop.stop()
    loop.run(lambda: time.monotonic())

    assert "produce attempts" in log
    assert log[log.index("produce attempts") :] == ["produce attempts", "flush"]
    assert len(producer) == 0  # acknowledged


@pytest.mark.parametrize("mode", [0, 1], ids=["group", "share"])
def test_a_stopping_loop_waits_no_longer_for_a_drain_past_its_bound(mode: int) -> None:
    log: list[str] = []
    loop, _producer = stopping_loops(log)[mode]
    asked: list[float] = []

    def drained(seconds: float) -> bool:
        asked.append(seconds)
        log.append("drained?")
        return False  # a delivery loop that never ends its drain

    loop.drained = drained
    loop.stop()
    loop.run(lambda: time.monotonic() - CUT_WAIT)  # the bound is past

    assert log[-2:] == ["drained?", "flush"]  # flushed all the same
    assert len(asked) == 1
