"""Reading a topic as it stands (`scan`): a long read goes on while records come, however long
it takes; only a read that stops getting anything ends, as Kafka out of reach."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError
from fake_clock import Clock
from kafka_fakes import FakeMessage

from dispatcher.config.settings import Settings
from dispatcher.errors import KafkaUnavailable
from dispatcher.kafka import scan as scanning

TOPIC = "dlq"


class _End:
    """The end of a partition, as a consumer with `enable.partition.eof` reports it."""

    def __init__(self, partition: int) -> None:
        self._partition = partition

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._PARTITION_EOF)

    def partition(self) -> int:
        return self._partition


class SlowTopic:
    """A consumer of one partition of `size` records that hands out `batch` of them a call,
    each call taking `seconds` of `clock`; `stall` calls answer nothing at all."""

    def __init__(self, clock: Clock, size: int, batch: int, seconds: float) -> None:
        self.clock, self.size, self.batch, self.seconds = clock, size, batch, seconds
        self.next = 0
        self.stalled = False

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions={0: None}, error=None)})

    def get_watermark_offsets(self, _tp: Any, timeout: float) -> tuple[int, int]:
        return 0, self.size

    def assign(self, _partitions: Any) -> None:
        pass

    def consume(self, _count: int, _timeout: float) -> list[Any]:
        self.clock.advance(self.seconds)
        if self.stalled:
            return []
        if self.next >= self.size:
            return [_End(0)]
        first, self.next = self.next, min(self.next + self.batch, self.size)
        return [FakeMessage(TOPIC, 0, offset, b"{}") for offset in range(first, self.next)]

    def close(self) -> None:
        pass


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(scanning.time, "monotonic", clock)
    return clock


def _reading(monkeypatch: pytest.MonkeyPatch, topic: SlowTopic) -> None:
    monkeypatch.setattr(scanning, "made", lambda _kind, _config, _settings: topic)


def test_a_read_that_takes_longer_than_the_timeout_goes_on_while_records_come(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """A dead-letter topic of millions of letters takes minutes to read; it was cut after 60 s
    (`reading ... did not finish in time`, exit 3), so it could never be replayed at all."""
    topic = SlowTopic(clock, size=5000, batch=500, seconds=20.0)  # 200 s in all
    _reading(monkeypatch, topic)

    read = list(scanning.scan(Settings(), TOPIC, timeout=60.0))

    assert [record.offset for record in read] == list(range(5000))
    assert clock.now - 1000.0 > 60.0


def test_a_read_that_gets_nothing_for_the_timeout_ends_as_kafka_out_of_reach(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    topic = SlowTopic(clock, size=5000, batch=500, seconds=5.0)
    _reading(monkeypatch, topic)
    records = scanning.scan(Settings(), TOPIC, timeout=60.0)
    for _ in range(1000):  # two batches, then Kafka answers nothing
        next(records)
    topic.stalled = True

    with pytest.raises(KafkaUnavailable, match=r"reading dlq: nothing came for 60s"):
        list(records)


def test_a_read_tells_how_far_it_has_come_from_its_start_to_its_end(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    _reading(monkeypatch, SlowTopic(clock, size=1200, batch=500, seconds=0.1))
    told: list[tuple[int, int]] = []

    read = list(scanning.scan(Settings(), TOPIC, progress=lambda *now: told.append(now)))

    assert len(read) == 1200
    assert told == [(0, 1200), (500, 1200), (1000, 1200), (1200, 1200)]
