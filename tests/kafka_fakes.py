"""Stand-ins for confluent_kafka objects in unit tests (its `Message` cannot be constructed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException


@dataclass
class FakeMessage:
    """What the dispatcher reads of a consumed `Message`."""

    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None
    _headers: list[tuple[str, bytes]] = field(default_factory=list)
    _key: bytes | None = None
    _timestamp: tuple[int, int] = (0, 0)
    _deliveries: int = 1  # a share consumer's delivery count

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def delivery_count(self) -> int:
        return self._deliveries


class PausingConsumer:
    """Records the pause state and the seeks a real consumer would hold."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, int]] = set()
        self.seeks: list[tuple[str, int, int]] = []

    def pause(self, partitions: list[Any]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[Any]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def seek(self, tp: Any) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class GroupConsumer:
    """A group consumer that is assigned `partitions` at its first poll, then hands out
    `batches`, one a call, and keeps the offsets stored."""

    def __init__(self, partitions: list[tuple[str, int]], batches: list[list[Any]]) -> None:
        self.partitions = partitions
        self.batches = list(batches)
        self.on_assign: Any = None
        self.on_revoke: Any = None
        self.stored: list[tuple[str, int, int]] = []
        self.paused: set[tuple[str, int]] = set()
        self.seeks: list[tuple[str, int, int]] = []
        self.closed = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.on_assign, self.on_revoke = callbacks["on_assign"], callbacks["on_revoke"]

    def _assign(self) -> None:
        if self.partitions:
            from confluent_kafka import TopicPartition

            partitions, self.partitions = self.partitions, []
            self.on_assign(self, [TopicPartition(t, p) for t, p in partitions])

    def consume(self, n: int, timeout: float) -> list[Any]:
        self._assign()
        return self.batches.pop(0) if self.batches else []

    def poll(self, timeout: float) -> None:
        self._assign()

    def store_offsets(self, offsets: list[Any]) -> None:
        self.stored += [(tp.topic, tp.partition, tp.offset) for tp in offsets]

    def commit(self, asynchronous: bool = True) -> None:
        pass

    def pause(self, partitions: list[Any]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[Any]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def seek(self, tp: Any) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def unsubscribe(self) -> None:
        pass

    def assignment(self) -> list[Any]:
        return []

    def memberid(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class KeepingProducer:
    """Keeps what is produced; `poll` acknowledges it all. `refuse(topic, record)` may name an
    exception for `produce` to raise instead (a full queue: BufferError)."""

    def __init__(self, refuse: Any = lambda _topic, _record: None) -> None:
        self.refuse = refuse
        self.produced: list[dict[str, Any]] = []
        self._unacked: list[dict[str, Any]] = []

    def produce(self, topic: str, **record: Any) -> None:
        refusal = self.refuse(topic, record)
        if refusal is not None:
            raise refusal
        entry = {"topic": topic, **record}
        self.produced.append(entry)
        self._unacked.append(entry)

    def poll(self, timeout: float = 0) -> int:
        acks, self._unacked = self._unacked, []
        for entry in acks:
            entry["on_delivery"](None, None)
        return len(acks)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0

    def __len__(self) -> int:
        return len(self._unacked)


# what librdkafka's idempotent producer fails of for good, as confluent-kafka raises it
FATAL = KafkaError(
    KafkaError._GAPLESS_GUARANTEE,
    "ProduceRequest for dlq [0] with 2 message(s) failed: unable to satisfy gap-less guarantee",
    fatal=True,
)


class FailingProducer(KeepingProducer):
    """A `KeepingProducer` that `fail()` fails for good, as librdkafka's producer fails: the
    next `poll` or `flush` raises the fatal error (confluent-kafka raises it there, instead of
    calling an error callback), later ones report what was not acknowledged as purged, and
    every `produce` raises `_FATAL` (counted in `refused`)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False
        self.refused = 0
        self._to_raise: KafkaError | None = None

    def fail(self) -> None:
        self.failed = True
        self._to_raise = FATAL

    def produce(self, topic: str, **record: Any) -> None:
        if self.failed:
            self.refused += 1
            raise KafkaException(KafkaError(KafkaError._FATAL))
        super().produce(topic, **record)

    def poll(self, timeout: float = 0) -> int:
        if self._to_raise is not None:
            error, self._to_raise = self._to_raise, None
            raise KafkaException(error)
        if not self.failed:
            return super().poll(timeout)
        purged, self._unacked = self._unacked, []
        for entry in purged:
            entry["on_delivery"](KafkaError(KafkaError._PURGE_QUEUE), None)
        return len(purged)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return len(self)
