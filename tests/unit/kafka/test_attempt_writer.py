"""The attempts writer: records keyed by event id on the worker's producer, and dropped
(counted, never raised, never retried) when there is no room or Kafka refuses them."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.kafka import attempts as attempts_module
from dispatcher.kafka.attempts import AttemptWriter
from dispatcher.metrics import Metrics
from dispatcher.model.attempt import AttemptRecord

RECORD = AttemptRecord("ev-1", "erp", 1, "msg_a", 200, 3.0, None, None, "ok", 1_793_611_800.0)


class Producer:
    """A stand-in for confluent_kafka.Producer: records what is produced; `full` refuses."""

    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []
        self.full = False

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.full:
            raise BufferError("Local: Queue full")
        self.produced.append({"topic": topic, **kwargs})


def dropped(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "dispatcher_attempt_records_dropped_total", {"reason": reason}
    )
    assert value is not None
    return value


def test_a_record_is_produced_keyed_by_its_event_id_with_no_flush() -> None:
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = AttemptWriter(producer, "dugaa.dispatch.attempts", metrics)

    writer.write(RECORD)

    (produced,) = producer.produced
    assert produced["topic"] == "dugaa.dispatch.attempts"
    assert produced["key"] == b"ev-1"
    assert json.loads(produced["value"])["hook_id"] == "erp"
    assert writer.pending == 1
    produced["on_delivery"](None, None)
    assert writer.pending == 0
    assert dropped(metrics, "queue_full") == dropped(metrics, "failed") == 0


def test_a_full_queue_drops_the_record_counts_it_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = AttemptWriter(producer, "attempts", metrics)
    producer.full = True

    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            writer.write(RECORD)

    assert dropped(metrics, "queue_full") == 5
    assert writer.pending == 0
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1


def test_a_record_kafka_refuses_is_counted_and_not_produced_again() -> None:
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = AttemptWriter(producer, "attempts", metrics)
    writer.write(RECORD)

    producer.produced[0]["on_delivery"]("TOPIC_AUTHORIZATION_FAILED", None)

    assert dropped(metrics, "failed") == 1
    assert len(producer.produced) == 1
    assert writer.pending == 0


def test_a_record_refused_at_produce_is_dropped_and_counted_not_raised() -> None:
    """An exception here would end a delivery that succeeded as an `internal` dead letter."""
    from confluent_kafka import KafkaError, KafkaException

    class Refusing(Producer):
        def produce(self, topic: str, **kwargs: Any) -> None:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))

    metrics = Metrics(CollectorRegistry())
    writer = AttemptWriter(Refusing(), "dugaa.dispatch.attempts", metrics)

    writer.write(RECORD)

    assert dropped(metrics, "failed") == 1
    assert writer.pending == 0


def test_unacknowledged_records_never_take_more_than_their_share_of_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attempts_module, "MAX_PENDING", 3)
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = AttemptWriter(producer, "attempts", metrics)

    for _ in range(5):
        writer.write(RECORD)

    assert len(producer.produced) == 3
    assert dropped(metrics, "queue_full") == 2
    producer.produced[0]["on_delivery"](None, None)
    writer.write(RECORD)
    assert len(producer.produced) == 4
