"""What a revoke leaves of a partition's outcome records: those not handed to the producer yet
are dropped, since the partition's new owner hands the same pairs off itself; those of the
partitions this worker keeps are written."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition
from kafka_fakes import FakeMessage, KeepingProducer
from test_consumer_faults import EVENTS, SETTINGS, consumer_loop

from dispatcher.engine.consumer import ConsumerLoop

VALUE = b'{"specversion":"1.0","id":"e1","type":"order.paid","source":"/s"}'


def holding_loop(batches: list[list[Any]]) -> tuple[ConsumerLoop, KeepingProducer, list[bool]]:
    """A loop whose `crm` hook's circuit is open (its pairs go to the first tier from the
    consumer thread) and whose producer's queue is full while `full[0]`."""
    full = [True]
    producer = KeepingProducer(refuse=lambda _t, _r: BufferError("queue full") if full[0] else None)
    loop = consumer_loop(batches, producer=producer, holding=lambda: {"crm"}, partitions=(0, 1))[0]
    return loop, producer, full


def test_a_revoked_partitions_unsent_records_are_dropped_and_a_kept_ones_written() -> None:
    loop, producer, full = holding_loop(
        [[FakeMessage(EVENTS, 0, 7, VALUE), FakeMessage(EVENTS, 1, 3, VALUE)]]
    )
    loop.step()  # each partition's held pair: a bundle of its own, no room for either
    assert loop.writer.unsent == 2

    loop._on_revoke(loop.consumer, [TopicPartition(EVENTS, 0)])  # partition 0 leaves
    full[0] = False
    loop.step()

    (written,) = producer.produced
    assert written["topic"] == SETTINGS.topics.retry_topic(0)
    assert dict(written["headers"])["dispatcher.bundle"] == b"1"
    assert loop.writer.unsent == 0
    producer.poll()
    loop.step()
    assert loop.consumer.stored == [(EVENTS, 1, 4)]  # partition 1 moves on; 0 is not ours


def test_a_record_refused_after_its_partition_left_is_not_produced_again() -> None:
    loop, producer, full = holding_loop([[FakeMessage(EVENTS, 0, 7, VALUE)]])
    full[0] = False
    loop.step()
    (bundle,) = producer.produced
    producer._unacked.clear()  # its delivery report comes late, after the revoke

    loop._on_revoke(loop.consumer, [TopicPartition(EVENTS, 0)])
    bundle["on_delivery"]("Local: Message timed out", None)
    loop.step()

    assert producer.produced == [bundle]  # not written a second time


def test_a_partition_assigned_back_does_not_take_the_records_of_its_last_assignment() -> None:
    loop, producer, full = holding_loop([[FakeMessage(EVENTS, 0, 7, VALUE)]])
    loop.step()
    loop._on_revoke(loop.consumer, [TopicPartition(EVENTS, 0)])
    loop._on_assign(loop.consumer, [TopicPartition(EVENTS, 0)])
    loop.consumer.batches.append([FakeMessage(EVENTS, 0, 7, VALUE)])  # consumed again
    loop.step()  # the same pair held back anew, unsent too; the last assignment's dropped
    assert loop.writer.unsent == 1

    full[0] = False
    loop.step()

    assert len(producer.produced) == 1  # this assignment's, once
