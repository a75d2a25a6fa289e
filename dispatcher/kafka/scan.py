"""Read a topic as it stands: every partition from a start point to its end at the time of the call.

Used by the tools that look back over the dispatcher's own topics: the hook store (`hooks list`),
and replay (the dead-letter and results topics). The admin service never scans per request: it
follows the topics into its index (`dispatcher.api.index`).
No consumer group is joined and nothing is committed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from dispatcher.config.settings import Settings
from dispatcher.errors import KafkaUnavailable
from dispatcher.kafka.clients import made
from dispatcher.kafka.scopes import client_settings
from dispatcher.logs import KAFKA
from dispatcher.model.event import Record

METADATA_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Start:
    """Where to start each partition: the beginning, or a time."""

    since_ms: int | None = None


def scan_config(settings: Settings) -> dict[str, Any]:
    """A consumer that joins no group, commits nothing and reports the end of each partition."""
    return {
        **client_settings(settings, "consumer"),
        "group.id": f"dugaa-scan-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,  # an empty partition reports its end this soon
        "logger": KAFKA,
    }


def partitions_of(consumer: Any, topic: str) -> list[int]:
    """The partitions of `topic`, or none when it does not exist (yet)."""
    try:
        metadata = consumer.list_topics(topic=topic, timeout=METADATA_TIMEOUT)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read the metadata of {topic}: {exc}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return []
    return sorted(found.partitions)


Progress = Callable[[int, int], None]  # offsets read so far, offsets to read in all


def scan(
    settings: Settings,
    topic: str,
    start: Start = Start(),
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> Iterator[Record]:
    """Every record of `topic` from `start` to the end each partition had when the scan began.
    `KafkaUnavailable` once `timeout` seconds pass with nothing read: a long read (a topic of
    millions of records takes minutes) goes on for as long as records come. `progress` is told
    how far the read has come, at its start and after each batch."""
    consumer = made(Consumer, scan_config(settings), settings)
    try:
        yield from _scan(consumer, topic, start, timeout, progress or _unheard)
    finally:
        consumer.close()


def _unheard(_done: int, _total: int) -> None:
    pass


def _scan(
    consumer: Any, topic: str, start: Start, timeout: float, progress: Progress
) -> Iterator[Record]:
    ends: dict[int, int] = {}
    at: dict[int, int] = {}  # the next offset of each partition still read
    begin: list[TopicPartition] = []
    for partition in partitions_of(consumer, topic):
        low, high = _watermarks(consumer, topic, partition)
        first = _first_offset(consumer, topic, partition, start, low, high)
        if first < high:
            ends[partition], at[partition] = high, first
            begin.append(TopicPartition(topic, partition, first))
    total = sum(ends[p] - at[p] for p in ends)
    done = 0
    progress(done, total)
    if not begin:
        return
    consumer.assign(begin)
    deadline = time.monotonic() + timeout
    while ends:
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"reading {topic}: nothing came for {timeout:g}s")
        messages = consumer.consume(500, 0.2)
        if messages:
            deadline = time.monotonic() + timeout
        for message in messages:
            error = message.error()
            partition = message.partition()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaUnavailable(f"reading {topic}: {error.str()}")
                if partition in ends:
                    done += ends.pop(partition) - at[partition]
                continue
            if partition not in ends:
                continue
            reached = min(message.offset() + 1, ends[partition])
            done += reached - at[partition]
            at[partition] = reached
            if reached == ends[partition]:
                ends.pop(partition)
            yield Record.from_message(message)
        if messages:
            progress(done, total)


def _watermarks(consumer: Any, topic: str, partition: int) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=METADATA_TIMEOUT
        )
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read the offsets of {topic}: {exc}") from None
    return int(low), int(high)


def _first_offset(
    consumer: Any, topic: str, partition: int, start: Start, low: int, high: int
) -> int:
    """The first offset of `partition` at or after `start`. A time before 1970 (a replay's
    `since`, less its clock slack) starts at the beginning: Kafka takes a negative timestamp
    for a special offset (-1 the end, -2 the beginning) or refuses it."""
    first = low
    if start.since_ms is not None and start.since_ms > 0:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, partition, start.since_ms)], timeout=METADATA_TIMEOUT
        )[0].offset
        first = max(first, high if found < 0 else found)
    return first
