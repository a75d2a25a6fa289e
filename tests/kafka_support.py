"""Helpers for tests, the demo and the benchmark that talk to a real broker.

Importable without pytest. The broker itself is `dispatcher.devtools.broker.LocalKafka`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from dispatcher.devtools.broker import LocalKafka

__all__ = [
    "LocalKafka",
    "Outgoing",
    "Record",
    "consume_all",
    "create_topic",
    "produce",
    "wait_for",
]

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    message: str = "a condition",
) -> T:
    """Calls `predicate` until it returns something truthy, and returns that; bounded by `timeout`.

    Raises TimeoutError naming `message` when the time is up.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(interval)


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka record, as plain values."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int

    @classmethod
    def from_message(cls, message: Message) -> Record:
        """The plain values of a consumed `confluent_kafka.Message`."""
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            raise ValueError("not a consumed record")
        raw = message.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key=_as_bytes(message.key()),
            value=_as_bytes(message.value()),
            headers=tuple((name, _as_bytes(value)) for name, value in pairs),
            timestamp_ms=message.timestamp()[1],
        )

    def header(self, name: str) -> bytes | None:
        """The last value of header `name`, or None when absent."""
        found = [value for key, value in self.headers if key == name]
        return found[-1] if found else None

    def headers_dict(self) -> dict[str, bytes | None]:
        """Headers by name (the last value wins)."""
        return dict(self.headers)

    def json(self) -> Any:
        """The value decoded as JSON."""
        if self.value is None:
            raise ValueError(f"{self.topic}[{self.partition}]@{self.offset} has no value")
        return json.loads(self.value)


def _as_bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to produce."""

    value: bytes | str | None
    key: bytes | str | None = None
    headers: tuple[tuple[str, bytes | str | None], ...] = ()
    partition: int | None = None


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    *,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> str:
    """Creates topic `name` and waits until every partition has a leader; returns the name."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(
        name, num_partitions=partitions, replication_factor=1, config=dict(config or {})
    )
    futures = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)
    futures[name].result(timeout)
    wait_for(
        lambda: _partitions_with_leaders(admin, name) == partitions,
        timeout,
        message=f"topic {name} to have {partitions} partitions with leaders",
    )
    return name


def _partitions_with_leaders(admin: AdminClient, name: str) -> int:
    metadata = admin.list_topics(topic=name, timeout=5)
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None:
        return 0
    return sum(1 for partition in topic.partitions.values() if partition.leader >= 0)


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[Outgoing | bytes | str],
    *,
    timeout: float = 30.0,
) -> int:
    """Produces `records` (acks=all) and waits until Kafka acknowledged all; returns the count."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    count = 0
    for item in records:
        record = item if isinstance(item, Outgoing) else Outgoing(value=item)
        extra: dict[str, Any] = {}
        if record.partition is not None:
            extra["partition"] = record.partition
        producer.produce(
            topic,
            value=record.value,
            key=record.key,
            headers=list(record.headers),
            on_delivery=on_delivery,
            **extra,
        )
        producer.poll(0)
        count += 1
    left = producer.flush(timeout)
    if left or errors:
        raise KafkaException(f"{left} records unacknowledged, errors: {errors[:5]}")
    return count


def consume_all(
    bootstrap: str,
    topic: str,
    expected_count: int,
    timeout: float = 30.0,
    *,
    config: Mapping[str, Any] | None = None,
) -> list[Record]:
    """Reads `topic` from the beginning until `expected_count` records arrived or `timeout` passed.

    Assigns every partition directly (no group rebalance to wait for), under a fresh group id
    that commits nothing. Returns what arrived, in arrival order; the caller checks the count.
    Waits for the topic to exist first, as the dispatcher creates some topics on first use.
    """
    deadline = time.monotonic() + timeout
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"consume-all-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **(config or {}),
        }
    )
    try:
        partitions = wait_for(
            lambda: _partition_ids(consumer, topic),
            timeout,
            message=f"topic {topic} to exist",
        )
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        while len(records) < expected_count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            message = consumer.poll(min(left, 0.25))
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            records.append(Record.from_message(message))
        return records
    finally:
        consumer.close()


def _partition_ids(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic=topic, timeout=5)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return []
    return sorted(found.partitions)
