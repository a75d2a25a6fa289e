"""The health writer tells whether a decision was taken, and writes a refused event again;
what it keeps of its failures stays the same size however long Kafka refuses it. Its producer
failed for good (a librdkafka fatal error), it says so in `fatal`, never raises it, and writes
nothing more."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError
from kafka_fakes import FailingProducer

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.errors import KafkaUnavailable
from dispatcher.kafka.health import HealthWriter
from dispatcher.model.health import Decision, Report

OPS = "dugaa.dispatch.operations"
PAUSED = Decision("erp", "paused", 1000.0, 1065.0, last_error="503")
REPORT = Report("erp", "w1", 1.0, None, 1.0, 1.0, "503")
TIMED_OUT = str(KafkaError(KafkaError._MSG_TIMED_OUT))
GAPLESS = (
    "ProduceRequest for dlq [0] with 2 message(s) failed: unable to satisfy gap-less guarantee"
    " (_GAPLESS_GUARANTEE)"
)


class Producer:
    """Answers what was produced on `poll`; refuses the next `refusing[topic]` records of a
    topic (a broker out of reach), then takes them."""

    def __init__(self, **refusing: int) -> None:
        self.refusing = refusing
        self.produced: list[tuple[str, bytes | None]] = []
        self._unanswered: list[tuple[str, Any]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced.append((topic, kwargs["value"]))
        self._unanswered.append((topic, kwargs["on_delivery"]))

    def poll(self, timeout: float = 0) -> int:
        unanswered, self._unanswered = self._unanswered, []
        for topic, on_delivery in unanswered:
            refused = self.refusing.get(topic, 0) > 0
            self.refusing[topic] = self.refusing.get(topic, 0) - 1
            on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT) if refused else None, None)
        return len(unanswered)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


def writer(producer: Any) -> HealthWriter:
    return HealthWriter(Settings(topics=Topics(operations=OPS)), producer)


def test_a_decision_is_told_as_not_taken_when_refused_and_as_taken_once_written() -> None:
    health = Settings().topics.health
    producer = Producer(**{health: 1})
    made = writer(producer)
    answers: list[tuple[str, bool]] = []
    made.decide(PAUSED, lambda decision, taken: answers.append((decision.state, taken)))
    made.poll()
    made.decide(PAUSED, lambda decision, taken: answers.append((decision.state, taken)))
    made.poll()

    assert answers == [("paused", False), ("paused", True)]


def test_an_event_the_operations_topic_refused_is_written_again_until_taken() -> None:
    producer = Producer(**{OPS: 2})
    made = writer(producer)
    made.decide(PAUSED)
    for _ in range(4):  # refused, refused, taken; then nothing more to write
        made.poll()

    topics = [topic for topic, _ in producer.produced]
    assert topics == [made.health, OPS, OPS, OPS]
    events = [json.loads(value or b"") for topic, value in producer.produced if topic == OPS]
    assert len({event["id"] for event in events}) == 1
    assert events[0]["type"] == "dispatcher.hook.paused"


def test_a_decision_the_producer_cannot_even_queue_is_told_at_once() -> None:
    class Full(Producer):
        def produce(self, topic: str, **kwargs: Any) -> None:
            raise BufferError("queue full")

    made = writer(Full())
    answers: list[bool] = []
    made.decide(PAUSED, lambda _decision, taken: answers.append(taken))

    assert answers == [False]
    assert made._unsent  # its event is written again at the next poll


def test_a_long_outage_keeps_the_first_failure_and_a_count_and_a_flush_names_them(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's writer lives as long as the worker: every refused report was kept in a list
    that nothing emptied, and each was a warning of its own."""
    caplog.set_level(logging.WARNING, logger="dispatcher.kafka.health")
    (repeats,) = logging.getLogger("dispatcher.kafka.health").filters  # `Repeats`
    monkeypatch.setattr(repeats, "_seen", {})  # as in a new worker: the earlier tests' lines
    health = Settings().topics.health
    made = writer(Producer(**{health: 1_000}))
    for round_ in range(1_000):  # a report every round, each one timed out
        made.report(Report("erp", "w1", float(round_), None, 1.0, float(round_), "503"))
        made.poll()

    held = [v for v in vars(made).values() if isinstance(v, list | dict)]
    assert all(len(value) <= 1 for value in held)  # nothing grew with the outage
    assert (made.failed, made.first_failure) == (1_000, TIMED_OUT)
    warned = [r.getMessage() for r in caplog.records if r.name == "dispatcher.kafka.health"]
    assert warned == [f"a health record was not acknowledged: {TIMED_OUT}"]  # once a window
    with pytest.raises(KafkaUnavailable) as raised:
        made.flush()
    assert str(raised.value) == (
        f"the health topic did not take the change: {TIMED_OUT} (and 999 more)"
    )


def test_a_flush_answers_for_the_records_since_the_last_one_only() -> None:
    """The first failure ever was kept, and named by every later flush: a worker's stop,
    hours after a refused report, was told its withdrawal failed."""
    health = Settings().topics.health
    made = writer(Producer(**{health: 1}))
    made.report(Report("erp", "w1", 1.0, None, 1.0, 1.0, "503"))
    made.poll()
    with pytest.raises(KafkaUnavailable, match="Message timed out"):
        made.flush()

    made.forget("erp/w1")
    made.flush()  # taken: nothing to answer for


def test_a_decision_decided_again_every_round_of_an_outage_waits_as_one_event() -> None:
    """Not taken, a decision is decided and written again the next round, and its event (the
    same id) with it: each refused copy joined the events to write again, one more a round."""
    producer = Producer(**{Settings().topics.health: 10**9, OPS: 10**9})  # until it ends
    made = writer(producer)
    for round_ in range(300):
        made.decide(dataclasses.replace(PAUSED, at=PAUSED.at + round_))
        made.poll()
    assert len(made._unsent) == 1

    producer.refusing = {}  # the outage ends
    produced = len(producer.produced)
    for _ in range(3):
        made.poll()

    (event,) = [json.loads(v or b"") for t, v in producer.produced[produced:] if t == OPS]
    assert event["type"] == "dispatcher.hook.paused"
    assert not made._unsent


def test_a_producer_failed_for_good_is_kept_not_raised_and_nothing_more_is_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """confluent-kafka raises librdkafka's fatal error from `poll()`: it ended the worker's
    round with a traceback, and from then on every round warned of each record `produce()`
    refused with `_FATAL`, for as long as the worker ran on without hook health."""
    producer = FailingProducer()
    made = writer(producer)
    made.report(REPORT)
    producer.fail()
    answers: list[bool] = []

    with caplog.at_level(logging.WARNING, logger="dispatcher.kafka.health"):
        made.poll()  # the fatal error, raised by `poll()`
        made.decide(PAUSED, lambda _decision, taken: answers.append(taken))
        made.report(REPORT)
        made.poll()  # the report written before comes back purged

    assert made.fatal == GAPLESS
    assert answers == [False]  # not taken: its caller does not apply it
    assert producer.refused == 0  # nothing more handed to the producer
    assert caplog.records == []  # its owner says it, once (`HealthKeeper.run`)


def test_a_flush_once_the_producer_failed_for_good_names_its_error() -> None:
    """`hooks pause` and `resume` flush the decision: the fatal error the flush raised came out
    of the command as a traceback (exit 1)."""
    producer = FailingProducer()
    made = writer(producer)
    producer.fail()
    made.decide(PAUSED)  # `produce()` answers `_FATAL`: that is not why

    with pytest.raises(KafkaUnavailable) as raised:
        made.flush()

    assert str(raised.value) == (
        f"the health topic did not take the change: its producer failed for good: {GAPLESS}"
    )
