"""The share-consumer loop accepts a record only when every outcome of it is acknowledged."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import AcknowledgeType, KafkaError, KafkaException
from fake_clock import Clock
from kafka_fakes import FailingProducer, FakeMessage
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.engine.share import FINAL_COMMIT_AT_LEAST, ShareLoop, refuse_ordered_hooks
from dispatcher.engine.wiring import CLOSE_GRACE, LAST_FLUSH, Wiring
from dispatcher.engine.worker import STOP_GRACE
from dispatcher.errors import ConfigError
from dispatcher.http.sender import Attempt
from dispatcher.kafka.sharegroup import ShareLimits
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome
from dispatcher.model.pair import Pair
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.match import HookIndex

SETTINGS = Settings(consume="share")
LIMITS = ShareLimits(delivery_count_limit=3)


def message(offset: int, event_type: str = "order.paid", deliveries: int = 1) -> FakeMessage:
    """What the loop reads of a share consumer's message."""
    value = json.dumps({"id": f"e{offset}", "type": event_type}).encode()
    return FakeMessage("events", 0, offset, value, _deliveries=deliveries)


class ShareConsumer:
    def __init__(self, batches: list[list[FakeMessage]]) -> None:
        self.batches = batches
        self.acks: list[tuple[int, Any]] = []
        self.commits = 0

    def subscribe(self, topics: list[str]) -> None:
        pass

    def poll(self, timeout: float) -> list[FakeMessage]:
        return self.batches.pop(0) if self.batches else []

    def acknowledge(self, message: FakeMessage, kind: Any = AcknowledgeType.ACCEPT) -> None:
        self.acks.append((message.offset(), kind))

    def commit_sync(self, timeout: float) -> dict[Any, Any]:
        self.commits += 1
        return {}

    def close(self) -> None:
        pass


class Producer:
    """Acknowledges what was produced on the next poll."""

    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []
        self._pending: list[Callable[[Any, Any], None]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, **kwargs})
        self._pending.append(kwargs["on_delivery"])

    def poll(self, timeout: float = 0) -> int:
        pending, self._pending = self._pending, []
        for callback in pending:
            callback(None, None)
        return len(pending)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


def decode(record: Record) -> Event:
    data = json.loads(record.value or b"{}")
    return Event(data["id"], data["type"], "/s")


class HeldProducer(Producer):
    """Acknowledges only what the test says; `on_produce` runs inside a produce call, as the
    delivery loop's thread may run at any point of the consumer thread's work."""

    def __init__(self) -> None:
        super().__init__()
        self.on_produce: Callable[[], None] = lambda: None

    def produce(self, topic: str, **kwargs: Any) -> None:
        super().produce(topic, **kwargs)
        self.on_produce()

    def poll(self, timeout: float = 0) -> int:
        return 0

    def ack(self, index: int) -> None:
        self.produced[index]["on_delivery"](None, None)


class Submitted(list[Pair]):
    """The pairs handed to the delivery loop; `until`: when each batch's attempts must stop."""

    def __init__(self) -> None:
        super().__init__()
        self.until: list[float | None] = []

    def __call__(self, pairs: list[Pair], until: float | None = None) -> None:
        self.extend(pairs)
        self.until.append(until)


def make_loop(
    consumer: ShareConsumer,
    hooks: list[Hook],
    untried: Any = None,
    producer: Any = None,
    limits: ShareLimits = LIMITS,
    clock: Clock | None = None,
) -> tuple[ShareLoop, Any, Submitted]:
    """The loop, on a clock that moves only when the test moves it (`clock`, else a new one)."""
    producer = Producer() if producer is None else producer  # an empty one has len() 0
    metrics = Metrics(CollectorRegistry())
    writer = outcome_writer(producer, SETTINGS, metrics)
    submitted = Submitted()

    def release(keys: set[tuple[str, int]], wait: float) -> Future[int]:
        done: Future[int] = Future()
        done.set_result(0)
        return done

    index = HookIndex(hooks)
    wiring = Wiring(
        SETTINGS, producer, writer, lambda: index, decode, metrics, submitted, release,
        ["events"], *([untried] if untried is not None else []),
    )  # fmt: skip
    loop = ShareLoop(consumer, wiring, limits, Clock() if clock is None else clock)
    return loop, producer, submitted


def hook(hook_id: str, **extra: Any) -> Hook:
    return Hook.from_dict(
        {"id": hook_id, "events": ["order.paid"], "url": f"https://{hook_id}.example.com/", **extra}
    )


def count(loop: ShareLoop, result: str) -> float:
    value: float = loop.metrics.share_records.labels(result)._value.get()
    return value


def test_a_record_is_accepted_only_when_every_outcome_of_it_is_acknowledged() -> None:
    consumer = ShareConsumer([[message(5)]])
    loop, _producer, submitted = make_loop(consumer, [hook("crm"), hook("erp")])
    loop.step()
    assert [p.hook.id for p in submitted] == ["crm", "erp"]

    first, second = (loop.finish(p) for p in submitted)
    first()
    loop.step()
    assert consumer.acks == []  # erp has no acknowledged outcome yet
    second()
    loop.step()

    assert consumer.acks == [(5, AcknowledgeType.ACCEPT)]
    assert consumer.commits == 1
    assert (count(loop, "acquired"), count(loop, "accepted")) == (1, 1)


def test_a_record_on_its_last_delivery_is_dead_lettered_as_redelivered_without_a_request() -> None:
    consumer = ShareConsumer([[message(9, deliveries=3)]])
    loop, producer, submitted = make_loop(consumer, [hook("crm")])
    loop.step()
    assert submitted == []
    assert consumer.acks == []  # not before the dead letter is acknowledged
    loop.step()

    topics = [p["topic"] for p in producer.produced]
    assert topics == [SETTINGS.topics.results, SETTINGS.topics.dead_letter]
    headers = dict(producer.produced[1]["headers"])
    assert headers["dispatcher.error.kind"] == b"redelivered"
    assert json.loads(producer.produced[0]["value"])["error_kind"] == "redelivered"
    assert consumer.acks == [(9, AcknowledgeType.ACCEPT)]
    assert count(loop, "redelivered") == 1


def test_a_redelivered_dead_letter_is_ended_by_the_wiring_so_it_carries_the_trace() -> None:
    """Traced, `untried` gives the pair a span: its dead letter and result name the trace."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    ended: list[str] = []

    def untried(pair: Pair, outcome: Outcome) -> Outcome:
        ended.append(pair.hook.id)
        return dataclasses.replace(outcome, trace_id=trace_id)

    consumer = ShareConsumer([[message(9, deliveries=3)]])
    loop, producer, _submitted = make_loop(consumer, [hook("crm")], untried)
    loop.step()

    assert ended == ["crm"]
    assert json.loads(producer.produced[0]["value"])["trace_id"] == trace_id
    assert dict(producer.produced[1]["headers"])["dispatcher.trace.id"] == trace_id.encode()


def test_an_undecodable_record_is_dead_lettered_and_accepted() -> None:
    def strict(record: Record) -> Event:
        from dispatcher.errors import DecodeError

        raise DecodeError("not an event")

    consumer = ShareConsumer([[FakeMessage("events", 0, 2, b"not json")]])
    loop, producer, _ = make_loop(consumer, [hook("crm")])
    loop.decode = strict
    loop.step()
    loop.step()

    assert [p["topic"] for p in producer.produced] == [SETTINGS.topics.dead_letter]
    assert consumer.acks == [(2, AcknowledgeType.ACCEPT)]


def test_a_record_intake_fails_on_unexpectedly_is_an_internal_dead_letter_and_accepted() -> None:
    def broken(record: Record) -> Event:
        raise RuntimeError("a defect")

    consumer = ShareConsumer([[message(2), message(3)]])
    loop, producer, _ = make_loop(consumer, [hook("crm")])
    loop.decode = broken
    loop.step()  # raised before: the share consumer's thread ended with the records acquired
    loop.step()

    kinds = [dict(p["headers"])["dispatcher.error.kind"] for p in producer.produced]
    assert kinds == [b"internal", b"internal"]
    assert consumer.acks == [(2, AcknowledgeType.ACCEPT), (3, AcknowledgeType.ACCEPT)]


def test_a_record_no_hook_wants_is_accepted_at_once() -> None:
    consumer = ShareConsumer([[message(3, event_type="order.refunded")]])
    loop, _producer, submitted = make_loop(consumer, [hook("crm")])
    loop.step()

    assert submitted == []
    assert consumer.acks == [(3, AcknowledgeType.ACCEPT)]
    assert consumer.commits == 1


def test_a_stop_accepts_what_finished_and_releases_the_rest() -> None:
    consumer = ShareConsumer([[message(1), message(2)]])
    loop, _producer, submitted = make_loop(consumer, [hook("crm")])
    loop.step()
    loop.finish(submitted[0])()  # the pair of offset 1 is written; offset 2 still runs

    loop.stop()
    loop.run(lambda: time.monotonic() + 0.1)

    assert consumer.acks == [(1, AcknowledgeType.ACCEPT), (2, AcknowledgeType.RELEASE)]
    assert (count(loop, "accepted"), count(loop, "released")) == (1, 1)


def test_a_producer_failed_for_good_stops_the_loop_which_releases_what_is_not_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = FailingProducer()
    consumer = ShareConsumer([[message(1), message(2)]])
    loop, _producer, submitted = make_loop(consumer, [hook("crm")], producer=producer)
    loop.step()
    loop.finish(submitted[0])()  # the pair of offset 1 is written; offset 2 still runs
    producer.fail()

    with caplog.at_level(logging.ERROR):
        loop.step()  # the producer's `poll()` raises the fatal error: it ended the thread
        loop.run(time.monotonic)  # stopped: releases the rest at once, closes

    assert loop.fatal is not None
    assert loop.fatal.endswith("(_GAPLESS_GUARANTEE)")
    # the one error (an earlier test may have left the dispatcher's loggers at INFO)
    (said,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert said.startswith("fatal producer error, stopping")
    assert consumer.acks == [(1, AcknowledgeType.ACCEPT), (2, AcknowledgeType.RELEASE)]


def test_ordering_key_hooks_are_refused_by_name() -> None:
    hooks = HookIndex([hook("ledger", ordering="key"), hook("sms"), hook("audit", ordering="key")])

    with pytest.raises(ConfigError, match=r"ordering: key: audit, ledger \("):
        refuse_ordered_hooks(hooks)
    refuse_ordered_hooks(HookIndex([hook("sms")]))


def test_acknowledgements_refused_after_the_lock_expired_are_counted_as_expired() -> None:
    class Refused:
        topic, partition, error = "events", 0, "INVALID_RECORD_STATE"

    class LateConsumer(ShareConsumer):
        def commit_sync(self, timeout: float) -> dict[Any, Any]:
            return {Refused(): None}

    consumer = LateConsumer([[message(4)]])
    loop, _producer, submitted = make_loop(consumer, [hook("crm")])
    loop.step()
    loop.finish(submitted[0])()
    loop.step()

    assert (count(loop, "accepted"), count(loop, "expired")) == (0, 1)


HANDOFF = LIMITS.lock_seconds * 0.8  # past three quarters of the lock: pairs are handed off
TIER0 = SETTINGS.topics.retry_topics[0]


def test_a_pair_that_ends_during_the_lock_handoff_keeps_its_end_and_is_not_handed_off() -> None:
    consumer = ShareConsumer([[message(5)]])
    producer = HeldProducer()
    clock = Clock()
    loop, _, submitted = make_loop(
        consumer, [hook("crm"), hook("erp")], None, producer, clock=clock
    )
    ended: list[Callable[[], None]] = []

    def erp_ends_on_the_delivery_loop() -> None:
        if not ended:
            ended.append(loop.finish(submitted[1]))

    producer.on_produce = erp_ends_on_the_delivery_loop
    loop.step()  # acquires offset 5 (crm, erp)
    clock.advance(HANDOFF)
    loop.step()  # its lock is near its end: crm is handed off

    assert [p["topic"] for p in producer.produced] == [TIER0]  # no hand-off for erp
    ended[0]()  # erp's own result acknowledged
    loop.step()
    assert consumer.acks == []  # crm's hand-off is not acknowledged yet
    producer.ack(0)
    loop.step()

    assert consumer.acks == [(5, AcknowledgeType.ACCEPT)]
    assert consumer.commits == 1


def test_a_pair_handed_off_at_the_lock_has_no_second_end_when_its_result_comes() -> None:
    consumer = ShareConsumer([[message(5), message(6)]])
    producer = HeldProducer()
    clock = Clock()
    loop, _, submitted = make_loop(consumer, [hook("crm")], None, producer, clock=clock)
    loop.step()
    clock.advance(HANDOFF)
    loop.step()  # both pairs handed off
    assert [p["topic"] for p in producer.produced] == [TIER0, TIER0]

    loop.finish(submitted[0])()  # offset 5's cut pass ended anyway: its end is not counted
    loop.step()
    assert consumer.acks == []
    producer.ack(0)
    producer.ack(1)
    loop.step()

    assert consumer.acks == [(5, AcknowledgeType.ACCEPT), (6, AcknowledgeType.ACCEPT)]


def test_a_pair_handed_off_at_the_lock_carries_on_its_attempts_and_their_start() -> None:
    """Its tier record counts the attempts the cut pass made, and its age runs from the first:
    the next pass's attempt is the one after them (the attempts topic numbers it so), and
    `max_attempts` and `max_age` count every attempt, the cut pass's included."""
    consumer = ShareConsumer([[message(5)]])
    producer = HeldProducer()
    clock = Clock()
    loop, _, submitted = make_loop(consumer, [hook("crm")], None, producer, clock=clock)
    loop.step()  # acquires offset 5; its lock has time left
    failed = Attempt(Verdict.failure("http_status", "HTTP 503", retryable=True, status=503), 0.5)
    before = time.time()
    loop.observe(submitted[0], 1, failed)
    loop.observe(submitted[0], 2, failed)
    clock.advance(HANDOFF)  # and now it is near its end: the pair is handed off
    loop.step()

    (handed,) = producer.produced
    headers = dict(handed["headers"])
    assert handed["topic"] == TIER0
    assert headers["dispatcher.attempts"] == b"2"
    first = float(headers["dispatcher.first.attempt.at"])
    assert before - 0.5 - 0.001 <= first <= time.time() - 0.5 + 0.001  # the first's start


def test_pairs_go_to_the_delivery_loop_with_the_time_their_attempts_must_stop_by() -> None:
    """Three quarters into the lock, by the clock read as the records came: from then on the
    delivery loop starts no attempt of them (`Scheduler.start`), and this loop hands them off."""
    clock = Clock()
    loop, _, submitted = make_loop(ShareConsumer([[message(5)]]), [hook("crm")], clock=clock)
    loop.step()

    assert submitted.until == [clock.now + LIMITS.lock_seconds * 0.75]


def test_a_worker_stalled_past_its_records_lock_makes_no_outcome_for_them_and_releases_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP, a long pause: the broker has handed the records to another worker meanwhile,
    which delivers them. Handing the pairs to a retry tier now would deliver them twice."""
    consumer = ShareConsumer([[message(5), message(6)], [message(7)]])
    producer = HeldProducer()
    clock = Clock()
    loop, _, submitted = make_loop(consumer, [hook("crm")], None, producer, clock=clock)
    loop.step()  # acquires offsets 5 and 6, their pairs handed to the delivery loop
    clock.advance(LIMITS.lock_seconds + 1)  # frozen with them, past their lock

    with caplog.at_level(logging.WARNING):
        loop.step()

    assert producer.produced == []  # no hand-off, no outcome
    assert consumer.acks == [(5, AcknowledgeType.RELEASE), (6, AcknowledgeType.RELEASE)]
    assert consumer.commits == 1
    assert [count(loop, r) for r in ("accepted", "released", "expired")] == [0, 0, 2]
    assert "2 records given up, with 2 deliveries not ended" in caplog.text
    loop.finish(submitted[0])()  # a result the delivery loop decided as the batch ended
    loop.step()  # the next batch is taken
    assert [p.event.id for p in submitted] == ["e5", "e6", "e7"]
    assert consumer.acks[2:] == []


def test_past_the_lock_a_record_whose_outcomes_were_acknowledged_is_accepted_late() -> None:
    """Given up, a batch still commits what was accepted: its outcomes stand (their requests
    were made), and the acknowledgement, late, counts as expired."""
    consumer = ShareConsumer([[message(5), message(6)]])
    clock = Clock()
    loop, _, submitted = make_loop(consumer, [hook("crm")], clock=clock)
    loop.step()
    loop.finish(submitted[0])()  # offset 5's outcome is written, and acknowledged by Kafka
    clock.advance(LIMITS.lock_seconds)

    loop.step()

    assert consumer.acks == [(5, AcknowledgeType.ACCEPT), (6, AcknowledgeType.RELEASE)]
    assert [count(loop, r) for r in ("accepted", "released", "expired")] == [0, 0, 2]


def test_without_a_retry_tier_pairs_still_running_near_the_lock_end_are_given_up() -> None:
    """With no tier to hand them to, pairs run on past three quarters of the lock (none starts
    an attempt any more); what has not ended when it is nearly over is given up."""
    consumer = ShareConsumer([[message(5), message(6)]])
    producer = HeldProducer()
    clock = Clock()
    loop, _, submitted = make_loop(consumer, [hook("crm")], None, producer, clock=clock)
    loop.settings = dataclasses.replace(SETTINGS, topics=Topics(retry=()))
    loop.step()
    clock.advance(HANDOFF)
    loop.step()  # nothing to hand them to: they run on
    assert (producer.produced, consumer.acks) == ([], [])
    loop.finish(submitted[0])()  # offset 5's pair ends, its outcome acknowledged
    loop.step()
    clock.advance(LIMITS.lock_seconds * 0.1)  # 90%: too late for offset 6's

    loop.step()

    assert consumer.acks == [(5, AcknowledgeType.ACCEPT), (6, AcknowledgeType.RELEASE)]
    assert [count(loop, r) for r in ("accepted", "released", "expired")] == [1, 0, 1]


def test_a_stored_hook_taken_in_as_unusable_does_not_stop_a_start() -> None:
    ledger = dataclasses.replace(hook("ledger", ordering="key"), unusable="no order here")

    refuse_ordered_hooks(HookIndex([ledger, hook("sms")]))


def statistics(state: str, assigned: int) -> str:
    """librdkafka's statistics of a share consumer, as far as readiness reads them."""
    return json.dumps(
        {"cgrp": {"state": state, "join_state": "steady", "assignment_size": assigned}}
    )


def test_readiness_follows_the_groups_state_and_assignment_in_the_statistics() -> None:
    loop, _, _ = make_loop(ShareConsumer([[message(0)]]), [hook("crm")])
    loop.step()  # a poll answered is no readiness: the consumer may hold no partition yet
    assert not loop.ready.is_set()
    seen = []
    for payload in (
        statistics("up", 1),
        statistics("query-coord", 1),  # the coordinator lost: Kafka gone, assignment kept
        statistics("up", 1),
        statistics("up", 0),
        "{}",  # saying nothing of the group: as it was
        "not json",
    ):
        loop.on_statistics(payload)
        seen.append((loop.ready.is_set(), loop.metrics.ready._value.get()))
    assert seen == [(True, 1), (False, 0), (True, 1), (False, 0), (False, 0), (False, 0)]


def test_a_drain_that_outlasts_the_lock_hands_its_running_pairs_to_a_retry_tier() -> None:
    """A stopping worker watches the lock too: draining past it, it would go on sending for a
    record the broker has handed to another worker meanwhile."""
    consumer = ShareConsumer([[message(5)]])
    producer = HeldProducer()
    loop, _, _submitted = make_loop(consumer, [hook("crm")], None, producer)
    loop.step()  # acquires offset 5: its pair runs, its lock far from its end
    assert producer.produced == []
    batch = loop.batch
    assert batch is not None
    batch.acquired_at -= LIMITS.lock_seconds * 0.8  # ... until the drain reaches it
    producer.on_produce = lambda: producer.ack(len(producer.produced) - 1)

    loop.stop()
    loop.run(lambda: time.monotonic() + 5.0)

    assert [p["topic"] for p in producer.produced] == [TIER0]
    assert consumer.acks == [(5, AcknowledgeType.ACCEPT)]  # accepted, not released at the end
    assert (count(loop, "accepted"), count(loop, "released")) == (1, 0)


def registry_away(record: Record) -> Event:
    from dispatcher.errors import RegistryUnavailable

    raise RegistryUnavailable("schema id 7", "HTTP 503: boom")


def test_a_record_the_schema_registry_cannot_serve_goes_to_the_first_tier_and_is_accepted() -> None:
    """A share group has no partition to hold: the record waits in the first retry tier, whose
    consumer group holds its partition until the registry is back. It was a dead letter."""
    consumer = ShareConsumer([[message(4)]])
    loop, producer, submitted = make_loop(consumer, [hook("crm")])
    loop.decode = registry_away
    loop.step()
    assert consumer.acks == []  # not before the tier has it
    loop.step()

    assert submitted == []
    [tier_record] = producer.produced
    assert tier_record["topic"] == SETTINGS.topics.retry_topic(0)
    headers = dict(tier_record["headers"])
    assert headers["dispatcher.deferred"] == b"schema_registry"
    assert headers["dispatcher.source.offset"] == b"4"
    assert b"HTTP 503" in headers["dispatcher.error.message"]
    assert tier_record["value"] == message(4).value()
    assert consumer.acks == [(4, AcknowledgeType.ACCEPT)]
    assert (count(loop, "deferred"), count(loop, "accepted")) == (1, 1)


def test_without_a_retry_tier_a_record_the_schema_registry_cannot_serve_is_a_dead_letter() -> None:
    consumer = ShareConsumer([[message(4)]])
    loop, producer, _ = make_loop(consumer, [hook("crm")])
    loop.settings = dataclasses.replace(SETTINGS, topics=Topics(retry=()))
    loop.decode = registry_away
    loop.step()
    loop.step()

    [letter] = producer.produced
    assert dict(letter["headers"])["dispatcher.error.kind"] == b"decode"
    assert consumer.acks == [(4, AcknowledgeType.ACCEPT)]


class UnansweredCommits(ShareConsumer):
    """A share consumer whose broker is gone: each commit blocks for its whole timeout."""

    def __init__(self, batches: list[list[FakeMessage]]) -> None:
        super().__init__(batches)
        self.waits: list[tuple[float, float]] = []  # (when it began, until when it blocked)
        self.closed = False
        self._answer = threading.Event()  # never set

    def commit_sync(self, timeout: float) -> dict[Any, Any]:
        began = time.monotonic()
        self.waits.append((began, began + timeout))
        self._answer.wait(timeout)
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT))

    def close(self) -> None:
        self.closed = True


def test_a_stop_with_the_broker_gone_commits_within_the_workers_stop_deadline() -> None:
    consumer = UnansweredCommits([[message(1), message(2)]])
    loop, _producer, submitted = make_loop(consumer, [hook("crm")])
    loop.step()
    loop.finish(submitted[0])()  # offset 1 is written; offset 2 still runs: it is released

    loop.stop()
    deadline = time.monotonic()  # the drain deadline has come
    loop.run(lambda: deadline)

    # the final commit's wait, then the close's (`close_by`) and the last flush's, end before
    # the worker leaves the thread behind: `STOP_GRACE` past the drain deadline (it waited
    # COMMIT_TIMEOUT, 15 s)
    ((began, waited_until),) = consumer.waits
    assert waited_until + CLOSE_GRACE + LAST_FLUSH < deadline + STOP_GRACE
    assert waited_until >= began + FINAL_COMMIT_AT_LEAST  # the commit had its chance
    assert consumer.closed
    assert consumer.acks == [(1, AcknowledgeType.ACCEPT), (2, AcknowledgeType.RELEASE)]
