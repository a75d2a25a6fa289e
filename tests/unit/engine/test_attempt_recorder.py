"""The attempts observer: each attempt a Deliverer makes becomes one record, written after the
attempt's pair has moved on, with the response excerpt masked; off means no observer at all."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.engine.attempts import AttemptRecorder, attempt_observers
from dispatcher.engine.deliver import Deliverer
from dispatcher.http.sender import Attempt, HookClient
from dispatcher.kafka.attempts import AttemptWriter
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, Source, idempotency_key
from dispatcher.model.pair import Pair
from dispatcher.pipeline.judge import Verdict, judge

TOKEN = "tok-5e1f-secret-value"
EVENT = Event(id="ev-9", type="order.paid", source="/orders", data={"n": 1}, tenant="acme")
SOURCE = Source("dugaa.events", 2, 17)


class Producer:
    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []

    def produce(self, topic: str, *, value: bytes, key: bytes, on_delivery: Any) -> None:
        self.values.append(json.loads(value))


def erp_hook(**extra: Any) -> Hook:
    raw = {
        "id": "erp",
        "events": ["order.*"],
        "url": "https://erp.example/in?tenant=acme",
        "auth": {"type": "bearer", "token": TOKEN},
        **extra,
    }
    return Hook.from_dict(raw)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    made = asyncio.new_event_loop()
    yield made
    made.close()


def pair_of(hook: Hook) -> Pair:
    record = Record("dugaa.events", 2, 17, b"k", b"{}", ())
    return Pair(record, EVENT, hook, SOURCE, idempotency_key(EVENT, hook.id))


def test_every_attempt_of_a_delivery_is_written_after_the_pair_moved_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    answers = iter(
        [
            httpx.Response(503, content=b'{"error":"busy, try later"}'),
            httpx.Response(503, content=f"echo: Authorization: Bearer {TOKEN}".encode()),
            httpx.Response(200, content=b'{"id":"ERP-77"}'),
        ]
    )
    hook = erp_hook()
    producer = Producer()

    async def run() -> tuple[Outcome, int]:
        loop = asyncio.get_running_loop()
        writer = AttemptWriter(producer, "attempts", Metrics(CollectorRegistry()))
        recorder = AttemptRecorder(writer, loop)
        deliverer = Deliverer(Metrics(CollectorRegistry()), (), 3, observers=[recorder])
        client = HookClient(hook, httpx.MockTransport(lambda _r: next(answers)))
        result = await deliverer.deliver(pair_of(hook), client)
        written_by_then = len(producer.values)
        await _no_sleep(0)  # one turn of the loop: the recorder's flush
        assert isinstance(result, Outcome)
        return result, written_by_then

    outcome, written_by_then = asyncio.run(run())

    assert outcome.outcome == "delivered"
    assert written_by_then < 3  # the last attempt's record waited for its pair's outcome
    assert [r["attempt"] for r in producer.values] == [1, 2, 3]
    assert [r["http_status"] for r in producer.values] == [503, 503, 200]
    assert [r["error_kind"] for r in producer.values] == ["http_status", "http_status", None]
    assert producer.values[0]["response_excerpt"] == '{"error":"busy, try later"}'
    assert producer.values[2]["response_excerpt"] == '{"id":"ERP-77"}'
    assert {r["event_id"] for r in producer.values} == {"ev-9"}
    assert {r["idempotency_key"] for r in producer.values} == {idempotency_key(EVENT, "erp")}
    assert {r["tenant"] for r in producer.values} == {"acme"}
    assert {(r["source_topic"], r["source_offset"]) for r in producer.values} == {
        ("dugaa.events", 17)
    }
    text = json.dumps(producer.values)
    assert TOKEN not in text
    assert "erp.example" not in text  # no URL, so no query either


def test_the_excerpt_shows_no_secret_of_the_hook_in_any_usual_encoding(
    loop: asyncio.AbstractEventLoop,
) -> None:
    hook = erp_hook()
    encoded = base64.b64encode(TOKEN.encode()).decode()
    body = f"token={TOKEN} b64={encoded} url=https://x.example/cb?api_key=k1&n=2".encode()
    recorder = AttemptRecorder(AttemptWriter(Producer(), "a", Metrics()), loop)

    record = recorder.record(pair_of(hook), 1, Attempt(judge(hook.response, 502, {}, body), 0.5), 9)

    assert record.response_excerpt == "token=*** b64=*** url=https://x.example/cb?api_key=***&n=2"
    assert record.at == 8.5  # when it was sent
    assert record.latency_ms == 500.0


def test_a_changed_hook_definition_is_masked_by_its_new_secrets(
    loop: asyncio.AbstractEventLoop,
) -> None:
    first, second = erp_hook(), erp_hook(auth={"type": "bearer", "token": "new-token-77aa"})
    recorder = AttemptRecorder(AttemptWriter(Producer(), "a", Metrics()), loop)
    body = f"{TOKEN} new-token-77aa".encode()

    before = recorder.record(pair_of(first), 1, Attempt(judge(first.response, 500, {}, body), 0), 0)
    after = recorder.record(pair_of(second), 1, Attempt(judge(first.response, 500, {}, body), 0), 0)

    assert before.response_excerpt == "*** new-token-77aa"
    assert after.response_excerpt == f"{TOKEN} ***"


@pytest.mark.parametrize(
    "verdict",
    [
        Verdict.failure("timeout", "no complete answer within 1s", retryable=True),
        Verdict.failure("network", "connection refused", retryable=True),
    ],
    ids=["timeout", "network"],
)
def test_an_attempt_with_no_answer_has_no_excerpt(
    loop: asyncio.AbstractEventLoop, verdict: Verdict
) -> None:
    """`null` when there was no answer (README), as `http_status` is: not an empty text, which
    is what an answer with an empty body shows."""
    hook = erp_hook()
    recorder = AttemptRecorder(AttemptWriter(Producer(), "a", Metrics()), loop)

    unanswered = recorder.record(pair_of(hook), 1, Attempt(verdict, 1.0), 9)
    empty = recorder.record(pair_of(hook), 2, Attempt(judge(hook.response, 204, {}, b""), 0), 9)

    assert (unanswered.http_status, unanswered.response_excerpt) == (None, None)
    assert json.loads(unanswered.to_json())["response_excerpt"] is None
    assert (empty.http_status, empty.response_excerpt) == (204, "")


def test_with_an_empty_attempts_topic_there_is_no_observer(
    loop: asyncio.AbstractEventLoop,
) -> None:
    off = replace(Settings(), topics=Topics(attempts=""))
    assert attempt_observers(off, Producer(), Metrics(), loop) == []
    (on,) = attempt_observers(Settings(), Producer(), Metrics(), loop)
    assert isinstance(on, AttemptRecorder)
    assert on.writer.topic == "dugaa.dispatch.attempts"


_real_sleep = asyncio.sleep


async def _no_sleep(_delay: float) -> None:
    await _real_sleep(0)


@pytest.mark.parametrize("tenant", ["acme", None])
def test_the_outcome_and_every_attempt_name_the_tenant_the_hook_has(
    monkeypatch: pytest.MonkeyPatch, tenant: str | None
) -> None:
    """Whose records they are: the hook's tenant as the pair carries it (None: a hook of every
    tenant), beside the event's."""
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    answers = iter([httpx.Response(503), httpx.Response(400, content=b"no such stream")])
    hook = erp_hook(**({"tenant": tenant} if tenant else {}))
    producer = Producer()

    async def run() -> Outcome:
        loop = asyncio.get_running_loop()
        recorder = AttemptRecorder(
            AttemptWriter(producer, "attempts", Metrics(CollectorRegistry())), loop
        )
        deliverer = Deliverer(Metrics(CollectorRegistry()), (), 3, observers=[recorder])
        client = HookClient(hook, httpx.MockTransport(lambda _r: next(answers)))
        result = await deliverer.deliver(pair_of(hook), client)
        await _no_sleep(0)  # one turn of the loop: the recorder's flush
        assert isinstance(result, Outcome)
        return result

    outcome = asyncio.run(run())

    assert outcome.outcome == "dead_lettered"
    assert (outcome.tenant, outcome.hook_tenant) == ("acme", tenant)
    assert [(r["tenant"], r["hook_tenant"]) for r in producer.values] == [("acme", tenant)] * 2
