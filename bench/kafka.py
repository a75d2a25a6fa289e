"""The benchmark's side of Kafka: topics, producing events, watching results and commits."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bench.workload import event


def committing_consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    """A member of `group` reading `topic` from its start, committing only when told: the naive
    loop's and the floor's (each commits its own way)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    return consumer


def create_topics(bootstrap: str, topics: dict[str, int], timeout: float = 30.0) -> None:
    """Creates each topic with its partition count and waits until every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()],
        operation_timeout=timeout,
    )
    for future in futures.values():
        future.result(timeout)
    deadline = time.monotonic() + timeout
    for name, partitions in topics.items():
        while True:
            found = admin.list_topics(topic=name, timeout=5).topics.get(name)
            if (
                found is not None
                and found.error is None
                and len(found.partitions) == partitions
                and all(p.leader >= 0 for p in found.partitions.values())
            ):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} has no leaders")
            time.sleep(0.05)


class Events:
    """Produces benchmark events and remembers when each was produced (`sent`)."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "batch.size": 262144}
        )
        self.sent: dict[str, float] = {}

    def _send(self, topic: str, partitions: int, tag: str, index: int) -> None:
        now = time.time()
        body = event(tag, index, now)
        self.sent[body["id"]] = now
        while True:
            try:
                self.producer.produce(
                    topic,
                    json.dumps(body, separators=(",", ":")),
                    partition=index % partitions,  # evenly, as many distinct keys would
                    headers=[("content-type", b"application/cloudevents+json")],
                )
                break
            except BufferError:
                self.producer.poll(0.01)
        self.producer.poll(0)

    def burst(self, topic: str, partitions: int, tag: str, count: int) -> None:
        """`count` events as fast as the producer takes them (a backlog to drain)."""
        for index in range(count):
            self._send(topic, partitions, tag, index)
        self.flush()

    def paced(self, topic: str, partitions: int, tag: str, count: int, rate: float) -> None:
        """`count` events at `rate` per second, evenly spaced."""
        started = time.monotonic()
        for index in range(count):
            due = started + index / rate
            wait = due - time.monotonic()
            if wait > 0.002:
                self.producer.poll(0)
                time.sleep(wait)
            self._send(topic, partitions, tag, index)
        self.flush()

    def flush(self) -> None:
        if self.producer.flush(30):
            raise KafkaException("events not acknowledged within 30 s")

    def close(self) -> None:
        self.producer.flush(5)
        del self.producer  # disconnect before the broker stops, which it would log loudly


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


class Results:
    """Reads a results topic in a thread: per (event tag, hook) the completion time of each event."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-results-{topic}",
                "enable.auto.commit": False,
            }
        )
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )
        self.completed: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self.outcomes: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="results", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for message in self.consumer.consume(2000, 0.05):
                if message.error() is not None:
                    continue
                value = message.value()
                assert value is not None  # every result the contenders write has a value
                record = json.loads(value)
                tag = record["event_id"].rsplit("-", 1)[0]
                key = (tag, record["hook_id"])
                with self._lock:
                    self.outcomes[key][record["outcome"]] += 1
                    self.completed[key].setdefault(
                        record["event_id"], _epoch(record["completed_at"])
                    )

    def count(self, tag: str, hook_id: str) -> int:
        with self._lock:
            return len(self.completed.get((tag, hook_id), ()))

    def times(self, tag: str, hook_id: str) -> dict[str, float]:
        with self._lock:
            return dict(self.completed.get((tag, hook_id), {}))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.consumer.close()


class Commits:
    """Whether a consumer group's committed offsets reached the end of a topic."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int) -> None:
        # never subscribes: it only asks the group coordinator for committed offsets
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        self.partitions = [TopicPartition(topic, p) for p in range(partitions)]

    def ends(self) -> dict[int, int]:
        return {
            tp.partition: self.consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in self.partitions
        }

    def reached(self, ends: dict[int, int]) -> bool:
        try:
            committed = self.consumer.committed(self.partitions, timeout=5)
        except KafkaException:
            return False
        # a partition that never had a record has nothing to commit
        return all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in committed)

    def close(self) -> None:
        self.consumer.close()


class Group:
    """The members of a consumer group and their share of one topic's partitions."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.group = group
        self.topic = topic

    def shares(self) -> list[int] | None:
        """Partitions of the topic per member, when the group is stable; else None."""
        try:
            found = self.admin.describe_consumer_groups([self.group])[self.group].result(10)
        except (KafkaException, TimeoutError):  # a fresh broker's coordinator still loading
            return None
        if found.state != ConsumerGroupState.STABLE:
            return None
        return sorted(
            (
                sum(1 for tp in member.assignment.topic_partitions if tp.topic == self.topic)
                for member in found.members
            ),
            reverse=True,
        )

    def settled(self, members: int, partitions: int) -> bool:
        """Stable with `members` members that hold all `partitions` of the topic between them."""
        shares = self.shares()
        return shares is not None and len(shares) == members and sum(shares) == partitions


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02
) -> float:
    """Polls `condition` until true; returns the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)
    return time.monotonic()
