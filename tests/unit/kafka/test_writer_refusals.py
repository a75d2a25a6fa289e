"""What the outcome writer does with a record Kafka refuses, at `produce()` or in a delivery
report: one too large is written smaller (a bundle as its pairs' tier records, any other
without the event's value), any other is produced again; nothing ends a task or a thread,
and every pair ends. Unless the producer failed for good: then nothing is produced again,
and no pair ends (the worker stops; the next one delivers them)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from kafka_fakes import FailingProducer
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import VALUE_OMITTED, Outcome, RetryState, Source
from dispatcher.model.pair import Pair
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.retry import Handoff

SETTINGS = Settings()
TOPICS = SETTINGS.topics
REFUSED = "dispatcher_outcome_records_refused_total"
TOO_LARGE = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)


class Producer:
    """Refuses at `produce()` what is larger than `limit` bytes (as librdkafka does past
    `message.max.bytes`), or with `error` while it is set."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.error: KafkaError | None = None
        self.produced: list[dict[str, Any]] = []

    def produce(self, topic: str, **record: Any) -> None:
        if self.error is not None:
            raise KafkaException(self.error)
        size = len(record["value"] or b"") + len(record["key"] or b"")
        size += sum(len(k) + len(v) for k, v in record["headers"])
        if size > self.limit:
            raise KafkaException(TOO_LARGE)
        self.produced.append({"topic": topic, **record})

    def ack_all(self, error: Any = None) -> None:
        produced, self.produced = self.produced, []
        for record in produced:
            record["on_delivery"](error, None)


def writer_of(producer: Any) -> tuple[Any, Metrics]:
    metrics = Metrics(CollectorRegistry())
    return outcome_writer(producer, SETTINGS, metrics), metrics


def dead_letter(value: bytes) -> tuple[Outcome, Record]:
    record = Record("dugaa.events", 1, 50, b"k", value, (("ce_id", b"e1"),))
    outcome = Outcome(
        event_id="e1",
        event_type="x",
        hook_id="b",
        outcome="dead_lettered",
        attempts=1,
        idempotency_key="msg_1",
        source=Source("dugaa.events", 1, 50),
        first_attempt_at=1_800_000_000.0,
        completed_at=1_800_000_001.0,
        error_kind="payload_too_large",
        error="body too large",
    )
    return outcome, record


def test_a_dead_letter_refused_as_too_large_at_produce_is_written_without_the_value() -> None:
    producer = Producer(limit=10_000)
    writer, metrics = writer_of(producer)
    outcome, record = dead_letter(b"x" * 20_000)
    done: list[bool] = []

    assert writer.put(outcome, record, lambda: done.append(True)) is None  # raised before

    result, letter = producer.produced
    assert result["topic"] == TOPICS.results
    assert (letter["topic"], letter["key"], letter["value"]) == (TOPICS.dead_letter, b"k", None)
    headers = dict(letter["headers"])
    assert headers["ce_id"] == b"e1"  # the same headers, the original's and ours
    assert headers["dispatcher.error.kind"] == b"payload_too_large"
    assert headers["dispatcher.source.offset"] == b"50"
    assert headers[VALUE_OMITTED].startswith(
        b"too large for Kafka (Broker: Message size too large)"
    )
    assert metrics.registry.get_sample_value(REFUSED, {"topic": TOPICS.dead_letter}) == 1
    producer.ack_all()
    assert done == [True]


def test_a_record_the_broker_reports_too_large_is_written_smaller_not_again_as_it_was() -> None:
    producer = Producer()
    writer, _metrics = writer_of(producer)
    outcome, record = dead_letter(b"x" * 20_000)
    done: list[bool] = []
    writer.put(outcome, record, lambda: done.append(True))
    result, letter = producer.produced
    producer.produced = []

    result["on_delivery"](None, None)
    letter["on_delivery"](TOO_LARGE, None)  # the topic's max.message.bytes is lower
    writer.flush_unsent()  # the turn's end

    (again,) = producer.produced
    assert again["value"] is None
    assert VALUE_OMITTED in dict(again["headers"])
    assert writer.unsent == 0
    producer.ack_all()
    assert done == [True]


def test_of_records_reported_too_large_together_only_the_largest_is_written_smaller() -> None:
    """The broker refuses a whole batch: the small letter batched with the large one has the
    same error, and goes again as it was."""
    producer = Producer()
    writer, _metrics = writer_of(producer)
    writer.put(*dead_letter(b"x" * 20_000), lambda: None)
    writer.put(*dead_letter(b"small"), lambda: None)
    letters = [p for p in producer.produced if p["topic"] == TOPICS.dead_letter]
    producer.produced = []

    for letter in letters:
        letter["on_delivery"](TOO_LARGE, None)
    writer.flush_unsent()

    assert sorted(p["value"] or b"" for p in producer.produced) == [b"", b"small"]


def test_a_letter_without_its_value_never_decodes_as_the_event_it_stood_for() -> None:
    """A binary-mode event keeps its ce_* headers: without the mark, a replay would send it
    with no data."""
    producer = Producer(limit=10_000)
    writer, _metrics = writer_of(producer)
    writer.put(*dead_letter(b"x" * 20_000), lambda: None)
    letter = producer.produced[1]

    record = Record(TOPICS.dead_letter, 0, 3, letter["key"], None, tuple(letter["headers"]))
    with pytest.raises(
        Exception, match=r"value was left out .* original is at dugaa.events\[1\]@50"
    ):
        decode(record)


def test_what_is_too_large_even_without_the_value_goes_without_the_events_headers_too() -> None:
    producer = Producer(limit=5_000)
    writer, _metrics = writer_of(producer)
    outcome, record = dead_letter(b"x" * 20_000)
    record = Record(record.topic, 1, 50, b"k", record.value, (("big", b"h" * 6_000),))

    writer.put(outcome, record, lambda: None)

    letter = producer.produced[1]
    assert (letter["key"], letter["value"]) == (None, None)
    names = [name for name, _ in letter["headers"]]
    assert "big" not in names
    assert {"dispatcher.source.topic", VALUE_OMITTED} <= set(names)


def test_a_record_with_nothing_left_to_leave_out_is_given_up_and_its_pair_ends_on_the_polling_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = Producer(limit=10)
    writer, _metrics = writer_of(producer)
    done: list[bool] = []

    with caplog.at_level(logging.ERROR, "dispatcher.kafka.producing"):
        writer.put(*dead_letter(b"x" * 100), lambda: done.append(True))

    assert producer.produced == []
    assert done == []  # not on this thread (the delivery loop's)
    writer.flush_unsent()
    assert done == [True]
    assert any("given up" in r.getMessage() for r in caplog.records)


def test_any_other_refusal_at_produce_is_produced_again_not_raised() -> None:
    producer = Producer()
    producer.error = KafkaError(KafkaError._UNKNOWN_TOPIC)
    writer, metrics = writer_of(producer)
    done: list[bool] = []

    assert writer.put(*dead_letter(b"{}"), lambda: done.append(True)) is None

    assert writer.unsent == 2
    assert metrics.registry.get_sample_value(REFUSED, {"topic": TOPICS.results}) == 1
    producer.error = None
    writer.flush_unsent()
    assert [p["value"] is not None for p in producer.produced] == [True, True]  # unchanged
    producer.ack_all()
    assert done == [True]


def held(n: int, size: int) -> tuple[Record, str]:
    return Record("dugaa.events", 4, 100 + n, b"k%d" % n, b"v" * size, ()), f"msg_{n}"


def test_a_bundle_held_at_intake_too_large_goes_as_a_tier_record_per_pair() -> None:
    """An event of 800 KB is 1.07 MB in a bundle (base64) and fits Kafka alone."""
    producer = Producer(limit=900_000)
    writer, _metrics = writer_of(producer)
    finished: list[int] = []

    writer.hold_back(
        "b", [held(0, 800_000)], 1_800_000_030.0, ("network", "circuit open"), 1_800_000_000.0,
        lambda record: finished.append(record.offset),
    )  # fmt: skip

    (single,) = producer.produced
    assert (single["topic"], single["key"]) == (TOPICS.retry_topic(0), b"k0")
    assert len(single["value"]) == 800_000  # the event as it is, not base64
    tier_record = Record("t", 0, 0, None, None, tuple(single["headers"]))
    assert RetryState.from_record(tier_record) == RetryState(
        "b", 0, 1_800_000_000.0, 1_800_000_030.0, Source("dugaa.events", 4, 100), "msg_0",
        "network", "circuit open",
    )  # fmt: skip
    producer.ack_all()
    assert finished == [100]


def test_a_bundle_the_broker_reports_too_large_goes_as_a_tier_record_per_pair() -> None:
    producer = Producer()
    writer, _metrics = writer_of(producer)
    finished: list[int] = []
    writer.hold_back("b", [held(0, 10), held(1, 10)], 2.0, ("network", "x"), 1.0,
                     lambda record: finished.append(record.offset))  # fmt: skip
    (bundle,) = producer.produced
    producer.produced = []

    bundle["on_delivery"](TOO_LARGE, None)
    writer.flush_unsent()

    assert [p["key"] for p in producer.produced] == [b"k0", b"k1"]
    producer.ack_all()
    assert finished == [100, 101]


def handoff(n: int, size: int) -> tuple[Handoff, Record]:
    hook = Hook.from_dict({"id": "b", "events": ["x"], "url": "https://b.example.com/"})
    record = Record("t.retry", 2, 40 + n, b"k%d" % n, b"v" * size, ())
    pair = Pair(record, Event(f"e{n}", "x", "/s"), hook, Source("t", 3, 7 + n), f"msg_{n}")
    verdict = Verdict.failure("network", "circuit breaker open", retryable=True)
    return Handoff(pair, 1, 1_800_000_000.5, 2, 1_799_999_000.25, verdict), record


def test_hand_offs_whose_bundle_is_too_large_go_as_tier_records_of_their_own() -> None:
    producer = Producer(limit=200_000)
    writer, _metrics = writer_of(producer)
    acked: list[int] = []
    given = [handoff(n, 60_000)[0] for n in range(3)]  # 240 KB in one bundle (base64)

    refused = writer.hand_off([(h, lambda n=n: acked.append(n)) for n, h in enumerate(given)])

    assert refused == []
    assert [len(p["value"]) for p in producer.produced] == [60_000, 60_000, 60_000]
    producer.ack_all()
    assert acked == [0, 1, 2]


GAPLESS = (
    "ProduceRequest for dlq [0] with 2 message(s) failed: unable to satisfy gap-less guarantee"
    " (_GAPLESS_GUARANTEE)"
)


def test_a_fatal_error_poll_raises_is_kept_for_the_worker_and_nothing_is_produced_again() -> None:
    producer = FailingProducer()
    writer, metrics = writer_of(producer)
    done: list[bool] = []
    writer.put(*dead_letter(b"{}"), lambda: done.append(True))  # a result and a dead letter
    producer.fail()

    writer.poll(0)  # confluent-kafka raises it: it ended the consumer thread
    for _ in range(3):  # the records it had not acknowledged come back purged
        writer.poll(0)
        writer.flush_unsent()
    writer.put(*dead_letter(b"{}"), lambda: done.append(True))  # the delivery loop goes on

    assert writer.fatal == GAPLESS
    assert (producer.refused, writer.unsent, done) == (0, 0, [])
    assert not metrics.registry.get_sample_value(REFUSED, {"topic": TOPICS.results})


def test_records_reported_FATAL_are_not_produced_again_every_turn() -> None:
    producer = Producer()
    writer, metrics = writer_of(producer)
    done: list[bool] = []
    writer.put(*dead_letter(b"{}"), lambda: done.append(True))

    producer.error = KafkaError(KafkaError._FATAL)  # what `produce()` answers from then on
    producer.ack_all(KafkaError(KafkaError._FATAL))
    for _ in range(3):
        writer.flush_unsent()  # each turn of the consumer loop: they were produced again

    assert (writer.unsent, done) == (0, [])
    assert not metrics.registry.get_sample_value(REFUSED, {"topic": TOPICS.results})
    assert writer.fatal == "Local: Fatal error (_FATAL)"


def test_produce_answering_FATAL_queues_nothing_and_the_error_poll_raises_says_why() -> None:
    producer = FailingProducer()
    writer, _metrics = writer_of(producer)
    producer.fail()

    assert writer.put(*dead_letter(b"{}"), lambda: None) is None
    assert (writer.unsent, writer.fatal) == (0, "Local: Fatal error (_FATAL)")
    assert writer.flush(1.0) == 0  # the fatal error, raised by `flush()` this time

    assert writer.fatal == GAPLESS


def test_an_error_poll_raises_that_is_not_fatal_is_not_swallowed() -> None:
    class Raising(Producer):
        def poll(self, timeout: float) -> int:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    writer, _metrics = writer_of(Raising())

    with pytest.raises(KafkaException):
        writer.poll(0)
    assert writer.fatal is None


def test_a_fatal_error_flush_raises_as_a_delivery_reports_system_error_is_kept_too() -> None:
    """confluent-kafka 2.16 sets the fatal error as its error callback's exception, then serves
    a delivery report in the same `flush()` with it still set: the report's first built-in call
    fails, and `flush()` raises that SystemError, raised from the fatal error (`hooks pause` on
    a real broker). It came out of the writer as a traceback."""

    class Reporting(FailingProducer):
        def flush(self, timeout: float = 0) -> int:
            try:
                self.poll()
            except KafkaException as exc:
                raise SystemError("<built-in function isinstance> returned a result") from exc
            return len(self)

    producer = Reporting()
    writer, _metrics = writer_of(producer)
    writer.put(*dead_letter(b"{}"), lambda: None)
    producer.fail()

    writer.flush(1.0)

    assert writer.fatal == GAPLESS


def test_a_system_error_that_no_fatal_error_caused_is_not_swallowed() -> None:
    class Raising(Producer):
        def poll(self, timeout: float) -> int:
            raise SystemError("a defect") from KafkaException(KafkaError(KafkaError._TRANSPORT))

    writer, _metrics = writer_of(Raising())

    with pytest.raises(SystemError):
        writer.poll(0)
    assert writer.fatal is None
