"""A stopping consumer leaves its group before it closes: it unsubscribes, then serves the
rebalance callbacks on its own thread until librdkafka says it left (no assignment, no member
id), so that the close never answers a rebalance still under way. Bounded: a group that does
not let it go within the time given is left to the close, with a warning. The revoke it serves
commits without waiting (a synchronous commit would wait for ever with the broker gone)."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from dispatcher.engine.consumer import BATCH, POLL_SECONDS, ConsumerLoop


class LeavingConsumer:
    """A group member that keeps its partitions for `turns` polls after the unsubscribe, and
    its member id for one poll more (librdkafka leaves the group once the revoke is done)."""

    def __init__(self, turns: int, refuse: bool = False) -> None:
        self.turns = turns
        self.refuse = refuse
        self.calls: list[str] = []
        self.unsubscribed = False
        self.member: str | None = "rdkafka-member"

    def unsubscribe(self) -> None:
        self.calls.append("unsubscribe")
        if self.refuse:
            raise KafkaException(KafkaError(KafkaError._STATE))
        self.unsubscribed = True

    def assignment(self) -> list[Any]:
        return ["partition"] if self.turns > 0 else []

    def memberid(self) -> str | None:
        return self.member

    def consume(self, count: int, timeout: float) -> list[Any]:
        self.calls.append(f"consume {count} {timeout}")
        if not self.unsubscribed:
            return ["record"]
        if self.turns > 0:
            self.turns -= 1
        elif self.member is not None:
            self.member = None
        return ["record of a partition given up"]


def loop_over(consumer: LeavingConsumer) -> ConsumerLoop:
    loop = ConsumerLoop.__new__(ConsumerLoop)
    loop.consumer = consumer
    loop.topics = ["events"]
    return loop


def test_it_unsubscribes_then_polls_until_it_has_neither_partitions_nor_a_member_id() -> None:
    consumer = LeavingConsumer(turns=3)
    loop_over(consumer)._leave(time.monotonic() + 60)
    poll = f"consume {BATCH} {POLL_SECONDS}"
    assert consumer.calls == ["unsubscribe", poll, poll, poll, poll]
    assert consumer.assignment() == []
    assert consumer.memberid() is None


def test_a_member_that_already_left_is_not_polled() -> None:
    consumer = LeavingConsumer(turns=0)
    consumer.member = None  # never joined, or the group is gone
    loop_over(consumer)._leave(time.monotonic() + 60)
    assert consumer.calls == ["unsubscribe"]


def test_a_group_that_does_not_let_go_is_left_to_the_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = LeavingConsumer(turns=10**9)
    with caplog.at_level(logging.WARNING, logger="dispatcher.engine.consumer"):
        loop_over(consumer)._leave(time.monotonic())  # no time left
    assert consumer.calls == ["unsubscribe"]
    assert "still in its group (a rebalance under way, or no coordinator)" in caplog.text


def test_an_unsubscribe_refused_goes_straight_to_the_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = LeavingConsumer(turns=3, refuse=True)
    with caplog.at_level(logging.WARNING, logger="dispatcher.engine.consumer"):
        loop_over(consumer)._leave(time.monotonic() + 60)
    assert consumer.calls == ["unsubscribe"]
    assert "could not leave the group before closing" in caplog.text


class CommittingConsumer:
    def __init__(self) -> None:
        self.commits: list[bool] = []

    def commit(self, *, asynchronous: bool) -> None:
        self.commits.append(asynchronous)


@pytest.mark.parametrize(("stopping", "asynchronous"), [(False, False), (True, True)])
def test_a_revoke_commits_synchronously_unless_the_worker_is_stopping(
    stopping: bool, asynchronous: bool
) -> None:
    loop = ConsumerLoop.__new__(ConsumerLoop)
    loop.settings = SimpleNamespace(drain_timeout=20.0)  # type: ignore[assignment]
    loop.stopping = threading.Event()
    if stopping:
        loop.stopping.set()
    loop._release = lambda keys, wait: None  # type: ignore[method-assign]
    loop._store = lambda: None  # type: ignore[method-assign]
    loop._forget = lambda keys: None  # type: ignore[method-assign]
    consumer = CommittingConsumer()
    loop._on_revoke(consumer, [])
    assert consumer.commits == [asynchronous]
