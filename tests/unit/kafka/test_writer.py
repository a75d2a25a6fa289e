"""The outcome writer's hand-off of a pair to a retry tier without awaiting (open circuits)."""

from __future__ import annotations

import gc
from typing import Any

from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import RetryState, Source
from dispatcher.model.pair import Pair
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.retry import Handoff


class Producer:
    def __init__(self, full: bool = False) -> None:
        self.full = full
        self.produced: list[dict[str, Any]] = []

    def produce(self, topic: str, **record: Any) -> None:
        if self.full:
            raise BufferError("local queue full")
        self.produced.append({"topic": topic, **record})


def handoff(tier: int = 1) -> tuple[Handoff, Record]:
    hook = Hook.from_dict({"id": "b", "events": ["x"], "url": "https://b.example.com/"})
    headers = (("traceparent", b"00-1-2-01"), ("dispatcher.attempts", b"9"))
    record = Record("t.retry", 2, 40, b"k", b'{"id":"e"}', headers)
    pair = Pair(record, Event("e", "x", "/s"), hook, Source("t", 3, 7), "msg_1", attempts=2)
    verdict = Verdict.failure("network", "circuit breaker open", retryable=True)
    return Handoff(pair, tier, 1_800_000_000.5, 2, 1_799_999_000.25, verdict), record


def test_a_hand_off_is_one_tier_record_keeping_the_event_and_its_own_headers() -> None:
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = outcome_writer(producer, Settings(), metrics)
    result, record = handoff()
    acked: list[bool] = []

    assert writer.try_handoff(result, record, lambda: acked.append(True))

    (produced,) = producer.produced
    assert produced["topic"] == Settings().topics.retry_topic(1)
    assert (produced["key"], produced["value"]) == (b"k", b'{"id":"e"}')
    headers = produced["headers"]
    assert headers[0] == ("traceparent", b"00-1-2-01")  # the event's own, ours dropped
    tier_record = Record("x", 0, 0, None, None, tuple(headers))
    assert RetryState.from_record(tier_record) == RetryState(
        "b",
        2,
        1_799_999_000.25,
        1_800_000_000.5,
        Source("t", 3, 7),
        "msg_1",
        "network",
        "circuit breaker open",
    )
    produced["on_delivery"](None, None)
    assert acked == [True]


def test_a_full_producer_queue_declines_the_hand_off_and_a_batch_is_counted_once() -> None:
    metrics = Metrics(CollectorRegistry())
    writer = outcome_writer(Producer(full=True), Settings(), metrics)
    result, record = handoff(tier=0)

    assert not writer.try_handoff(result, record, lambda: None)
    writer.count_handoffs("b", 0, 3)

    tier = Settings().topics.retry_topic(0).rsplit(".", 1)[-1]
    sample = metrics.registry.get_sample_value(
        "dispatcher_retries_scheduled_total", {"hook": "b", "tier": tier}
    )
    assert sample == 3


def test_a_refused_record_is_produced_again_and_an_acked_one_leaves_no_garbage_cycle() -> None:
    producer = Producer()
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    result, record = handoff()
    acked: list[bool] = []
    gc.collect()
    gc.disable()  # what the writer leaves behind stays until the next collection, below
    try:
        assert writer.try_handoff(result, record, lambda: acked.append(True))
        first = producer.produced.pop()
        first["on_delivery"]("broker down", None)  # not acknowledged: queued again
        assert writer.unsent == 1
        assert acked == []
        writer.flush_unsent()
        again = producer.produced.pop()
        assert (again["topic"], again["value"]) == (first["topic"], first["value"])
        again["on_delivery"](None, None)
        assert acked == [True]
        assert writer.unsent == 0
        del first, again
        assert gc.collect() == 0  # every record's callback freed as it went, not by the collector
    finally:
        gc.enable()
