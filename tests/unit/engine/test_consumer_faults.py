"""The consumer thread against records it cannot take in: an event that does not decode, and
a record that intake fails on unexpectedly, each become a dead letter; the thread goes on.
And against a producer that failed for good, or a group id another kind of group holds: the
thread stops, as the worker must."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition
from kafka_fakes import FailingProducer, FakeMessage, GroupConsumer, KeepingProducer
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.consumer import ConsumerLoop
from dispatcher.engine.outage import LONGEST_WAIT, outage_backoff
from dispatcher.engine.wiring import Wiring
from dispatcher.errors import RegistryUnavailable
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.pair import Pair
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.match import HookIndex

SETTINGS = Settings()
EVENTS = SETTINGS.topics.events[0]
LONE_SURROGATE_ID = b'{"specversion":"1.0","id":"\\ud800","type":"order.paid","source":"/s"}'
GOOD = b'{"specversion":"1.0","id":"e2","type":"order.paid","source":"/s"}'


def consumer_loop(
    batches: list[list[Any]],
    decoder: Any = decode,
    producer: Any = None,
    holding: Any = lambda: (),
    partitions: tuple[int, ...] = (0,),
) -> tuple[ConsumerLoop, Any, list[Pair], Metrics]:
    """A consumer loop over `batches` of the events topic's `partitions`, with one hook (`crm`,
    order.*); its pairs are kept in the list it returns, its records go to `producer`."""
    consumer, submitted = GroupConsumer([(EVENTS, p) for p in partitions], batches), []
    producer = KeepingProducer() if producer is None else producer
    metrics = Metrics(CollectorRegistry())
    hooks = HookIndex(
        [Hook.from_dict({"id": "crm", "events": ["order.*"], "url": "https://c.example.com"})]
    )

    def release(_keys: Any, _wait: float) -> Future[int]:
        done: Future[int] = Future()
        done.set_result(0)
        return done

    wiring = Wiring(
        SETTINGS, producer, outcome_writer(producer, SETTINGS, metrics), lambda: hooks, decoder,
        metrics, submitted.extend, release, [EVENTS], holding=holding,
    )  # fmt: skip
    loop = ConsumerLoop(consumer, wiring)
    loop.subscribe()
    return loop, producer, submitted, metrics


def dead_letter_headers(producer: KeepingProducer) -> list[dict[str, bytes]]:
    return [
        dict(r["headers"]) for r in producer.produced if r["topic"] == SETTINGS.topics.dead_letter
    ]


def test_an_event_id_with_a_lone_surrogate_is_a_decode_dead_letter_the_next_one_a_pair() -> None:
    loop, producer, submitted, metrics = consumer_loop(
        [[FakeMessage(EVENTS, 0, 0, LONE_SURROGATE_ID), FakeMessage(EVENTS, 0, 1, GOOD)]]
    )

    loop.step()

    assert [p.event.id for p in submitted] == ["e2"]
    (letter,) = [r for r in producer.produced if r["topic"] == SETTINGS.topics.dead_letter]
    assert letter["value"] == LONE_SURROGATE_ID  # the original record, unchanged
    headers = dict(letter["headers"])
    assert headers["dispatcher.error.kind"] == b"decode"
    assert b"lone surrogate" in headers["dispatcher.error.message"]
    assert metrics.registry.get_sample_value(
        "dispatcher_dead_letters_total", {"hook": "", "error_kind": "decode"}
    )
    assert loop.consumer.stored == [(EVENTS, 0, 1)]  # the dead letter is acknowledged
    loop.finish(submitted[0])()  # the good event's pair ends
    loop.step()
    assert loop.consumer.stored[-1] == (EVENTS, 0, 2)


def test_the_consumer_threads_run_ends_only_when_stopped_after_such_an_event() -> None:
    loop, _producer, _submitted, _metrics = consumer_loop(
        [[FakeMessage(EVENTS, 0, 0, LONE_SURROGATE_ID)]]
    )
    stopper = threading.Timer(0.3, loop.stop)
    stopper.start()
    try:
        loop.run(lambda: 0.0)  # raised before, ending the thread with no drain, commit, close
    finally:
        stopper.cancel()
    assert loop.consumer.closed


def test_a_record_intake_fails_on_unexpectedly_is_an_internal_dead_letter_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def decoder(record: Record) -> Event:
        if record.offset == 0:
            raise RuntimeError("a defect")
        return decode(record)

    loop, producer, submitted, metrics = consumer_loop(
        [[FakeMessage(EVENTS, 0, 0, GOOD), FakeMessage(EVENTS, 0, 1, GOOD)]], decoder
    )

    with caplog.at_level(logging.ERROR):
        loop.step()

    assert [p.record.offset for p in submitted] == [1]
    (headers,) = dead_letter_headers(producer)
    assert headers["dispatcher.error.kind"] == b"internal"
    assert headers["dispatcher.error.message"] == b"internal error: RuntimeError: a defect"
    assert headers["dispatcher.source.offset"] == b"0"
    (logged,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged.exc_info is not None
    assert "dugaa.events[0]@0" in logged.getMessage()
    assert metrics.registry.get_sample_value(
        "dispatcher_dead_letters_total", {"hook": "", "error_kind": "internal"}
    )
    assert not metrics.registry.get_sample_value(
        "dispatcher_decode_failures_total", {"topic": EVENTS}
    )


def test_an_800kb_event_held_back_at_intake_goes_to_its_tier_alone_through_librdkafka() -> None:
    """Its bundle (base64, 1.07 MB) is past what librdkafka's `produce()` takes: it raised
    KafkaException out of the consumer thread's turn. The event itself fits a tier record."""
    from confluent_kafka import Producer

    from dispatcher.kafka.clients import producer_config

    config = producer_config(SETTINGS)
    config.pop("logger")
    producer = Producer({**config, "bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    big = GOOD.replace(b'"source":"/s"', b'"source":"/s","data":"' + b"x" * 800_000 + b'"')
    loop, _producer, submitted, metrics = consumer_loop(
        [[FakeMessage(EVENTS, 0, 0, big)]], producer=producer, holding=lambda: {"crm"}
    )
    try:
        loop.step()

        assert submitted == []
        assert (len(producer), loop.writer.unsent) == (1, 0)  # in librdkafka's queue
        refused = metrics.registry.get_sample_value(
            "dispatcher_outcome_records_refused_total", {"topic": SETTINGS.topics.retry_topic(0)}
        )
        assert refused == 1  # the bundle
    finally:
        producer.purge()


def test_a_producer_failed_for_good_stops_the_loop_which_commits_only_what_was_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """librdkafka's fatal error, raised by the producer's `poll()`, ended the thread with a
    traceback (and the worker then exited 0); records refused with `_FATAL` from then on went
    back to be produced again every turn."""
    producer = FailingProducer()
    loop, _producer, _submitted, _metrics = consumer_loop(
        [
            [FakeMessage(EVENTS, 0, 0, LONE_SURROGATE_ID)],
            [FakeMessage(EVENTS, 0, 1, LONE_SURROGATE_ID)],
        ],
        producer=producer,
    )
    loop.step()  # its dead letter is acknowledged: offset 1 stored
    producer.fail()

    with caplog.at_level(logging.ERROR):
        loop.step()  # offset 1's dead letter is refused, and `poll()` raises the fatal error
        loop.run(time.monotonic)  # stopped: drains, leaves the group, commits and closes

    assert loop.stopping.is_set()
    assert loop.fatal is not None
    assert loop.fatal.endswith("gap-less guarantee (_GAPLESS_GUARANTEE)")
    # the one error (an earlier test may have left the dispatcher's loggers at INFO)
    (said,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert said.startswith("fatal producer error, stopping")
    assert said.endswith(loop.fatal)
    assert loop.consumer.stored == [(EVENTS, 0, 1)]  # nothing past what was acknowledged
    assert loop.consumer.closed
    assert producer.refused == 1  # offset 1's dead letter, once: never produced again


class Refused(FakeMessage):
    """A poll's error, as librdkafka reports a JoinGroup the broker refused."""

    def error(self) -> Any:  # type: ignore[override]
        return KafkaError(KafkaError.INCONSISTENT_GROUP_PROTOCOL, "JoinGroup failed")


def test_a_group_id_held_by_a_share_group_stops_the_loop_naming_how_to_switch() -> None:
    loop, _producer, submitted, _metrics = consumer_loop([[Refused(EVENTS, 0, 0, None)]])

    loop.step()

    assert loop.stopping.is_set()
    assert loop.fatal is not None
    assert f"kafka-share-groups.sh --delete --group {SETTINGS.group_id}" in loop.fatal
    assert submitted == []


AVRO = b"\x00\x00\x00\x00\x07\x02avro"  # an event framed for schema id 7: its schema comes from the registry


class AwayRegistry:
    """A decoder to which the schema registry is away (while `away`) for AVRO records; it
    reads them as an event `e-avro` once it is back, and JSON records as usual."""

    def __init__(self) -> None:
        self.away = True

    def __call__(self, record: Record) -> Event:
        if record.value != AVRO:
            return decode(record)
        if self.away:
            raise RegistryUnavailable("schema id 7", "ConnectError: [Errno 111] Connection refused")
        return Event(id=f"e-avro-{record.offset}", type="order.paid", source="/s")


def held_gauge(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("dispatcher_registry_held_partitions")


def test_an_event_met_with_the_registry_away_holds_its_partition_instead_of_a_dead_letter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It was a `decode` dead letter with no hook, which a replay skips: lost for good."""
    registry = AwayRegistry()
    again = [FakeMessage(EVENTS, 0, 0, AVRO), FakeMessage(EVENTS, 0, 1, AVRO)]
    loop, producer, submitted, metrics = consumer_loop(
        [[FakeMessage(EVENTS, 0, 0, AVRO), FakeMessage(EVENTS, 0, 1, AVRO)], again],
        decoder=registry,
    )

    with caplog.at_level(logging.WARNING, logger="dispatcher.engine.outage"):
        loop.step()

        assert dead_letter_headers(producer) == []
        assert submitted == []
        assert loop.consumer.stored == []  # offset 0 is not committed: it is read again
        assert loop.consumer.paused == {(EVENTS, 0)}
        due = loop.pauses.waiting[(EVENTS, 0)]
        assert held_gauge(metrics) == 1
        registry.away = False
        loop.pauses.adjust(loop.assigned, loop.tracker, due)  # its backoff is over: resumed
        assert loop.consumer.paused == set()
        loop.step()  # librdkafka fetches it again from the held offset

    assert [p.event.id for p in submitted] == ["e-avro-0", "e-avro-1"]
    assert dead_letter_headers(producer) == []
    assert held_gauge(metrics) == 0
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2  # the spell, once as it begins and once as it ends
    assert said[0].startswith("schema registry unavailable for schema id 7: ConnectError")
    assert loop.consumer.seeks == [(EVENTS, 0, 0)]
    assert said[1].startswith("schema registry available again")


def test_while_the_registry_is_away_other_partitions_flow_and_the_spell_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop, producer, submitted, metrics = consumer_loop(
        [
            [
                FakeMessage(EVENTS, 0, 0, AVRO),
                FakeMessage(EVENTS, 1, 0, GOOD),
                FakeMessage(EVENTS, 2, 0, AVRO),
                FakeMessage(EVENTS, 1, 1, GOOD),
            ]
        ],
        decoder=AwayRegistry(),
        partitions=(0, 1, 2),
    )

    with caplog.at_level(logging.WARNING, logger="dispatcher.engine.outage"):
        loop.step()

    assert [p.source.partition for p in submitted] == [1, 1]
    assert loop.consumer.paused == {(EVENTS, 0), (EVENTS, 2)}
    assert held_gauge(metrics) == 2
    assert len(caplog.records) == 1
    assert dead_letter_headers(producer) == []


def test_a_partition_held_for_the_registry_that_is_revoked_is_let_go() -> None:
    loop, _producer, _submitted, metrics = consumer_loop(
        [[FakeMessage(EVENTS, 0, 0, AVRO)]], decoder=AwayRegistry()
    )
    loop.step()

    loop.consumer.on_revoke(loop.consumer, [TopicPartition(EVENTS, 0)])

    assert held_gauge(metrics) == 0
    assert loop.outage.held == {}
    assert loop.pauses.waiting == {}
    assert loop.consumer.stored == []  # its next owner reads offset 0 again


def test_a_worker_holding_a_partition_for_the_registry_stops_at_once() -> None:
    loop, _producer, _submitted, _metrics = consumer_loop(
        [[FakeMessage(EVENTS, 0, 0, AVRO)]], decoder=AwayRegistry()
    )
    loop.step()
    loop.stop()

    loop.run(lambda: time.monotonic() + 3600)  # nothing of the held record waits to drain

    assert loop.consumer.closed
    assert loop.consumer.stored == []


def test_the_wait_before_a_held_record_is_read_again_doubles_up_to_its_bound() -> None:
    assert [outage_backoff(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert outage_backoff(10_000) == LONGEST_WAIT
