"""A worker's retired tiers (tiers an earlier `topics.retry` named): found at start, told once
each, and read in the retry group, in queue mode too, so that their pairs still end; deleted
once read, each is told of once more, not warned of twice a second."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError
from kafka_fakes import FakeMessage, GroupConsumer, KeepingProducer
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.config.topics import Topics
from dispatcher.engine.assembly import consumer_groups
from dispatcher.engine.consumer import ConsumerLoop
from dispatcher.engine.wiring import Wiring
from dispatcher.engine.worker import find_retired_tiers
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.match import HookIndex

NOW = Topics(retry=(60.0, 600.0))  # [1m, 10m], changed from the default [30s, 5m, 1h]
RETIRED = ("dugaa.dispatch.retry.30s", "dugaa.dispatch.retry.5m")


def cluster(*topics: str) -> SimpleNamespace:
    """An admin client whose cluster holds `topics`."""
    return SimpleNamespace(
        list_topics=lambda timeout: SimpleNamespace(topics={t: None for t in topics})
    )


def test_each_retired_tier_is_told_once_with_when_it_may_be_deleted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(group_id="billing", topics=NOW)
    admin = cluster(*NOW.retry_topics, *RETIRED, "dugaa.events", "other.retry.5m")

    with caplog.at_level(logging.INFO, logger="dispatcher.engine.worker"):
        found = find_retired_tiers(admin, settings)  # type: ignore[arg-type]

    assert found == RETIRED
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 2
    for topic, line in zip(RETIRED, told, strict=True):
        assert line.startswith(f"retry tier {topic} is not in topics.retry: it is read until")
        assert line.endswith("delete it once the group billing.retry has no lag on it")


def test_nothing_is_told_when_no_tier_is_retired(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(topics=NOW)

    with caplog.at_level(logging.INFO, logger="dispatcher.engine.worker"):
        assert find_retired_tiers(cluster(*NOW.retry_topics), settings) == ()  # type: ignore[arg-type]

    assert caplog.records == []


@pytest.mark.parametrize("consume", ["group", "share"])
def test_the_retry_group_reads_the_retired_tiers_after_the_configured_ones(consume: str) -> None:
    settings = Settings(group_id="billing", topics=NOW, consume=consume)  # type: ignore[arg-type]

    assert consumer_groups(settings, RETIRED) == [
        ("billing", ["dugaa.events"]),
        ("billing.retry", [*NOW.retry_topics, *RETIRED]),
        ("billing.operations", ["dugaa.dispatch.operations"]),
    ]


def test_retired_tiers_are_read_even_with_no_tier_configured() -> None:
    settings = Settings(group_id="billing", topics=Topics(retry=(), operations=""))

    assert consumer_groups(settings, RETIRED) == [
        ("billing", ["dugaa.events"]),
        ("billing.retry", list(RETIRED)),
    ]
    assert consumer_groups(settings, ()) == [("billing", ["dugaa.events"])]


class Gone(FakeMessage):
    """A poll's error, as librdkafka reports a partition of a deleted topic at each try."""

    def error(self) -> Any:  # type: ignore[override]
        return KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic or partition")


def retry_loop(batches: list[list[Any]]) -> ConsumerLoop:
    """The retry group's loop of a worker whose tiers are [1m, 10m], reading two retired ones."""
    settings = Settings(topics=NOW)
    topics = [*NOW.retry_topics, *RETIRED]
    consumer, producer = GroupConsumer([(t, 0) for t in topics], batches), KeepingProducer()
    metrics = Metrics(CollectorRegistry())
    released: Future[int] = Future()
    released.set_result(0)
    wiring = Wiring(
        settings, producer, outcome_writer(producer, settings, metrics), lambda: HookIndex([]),
        decode, metrics, lambda _pairs: None, lambda _keys, _wait: released, topics,
    )  # fmt: skip
    loop = ConsumerLoop(consumer, wiring, reports_ready=False, group_id="dugaa-dispatcher.retry")
    loop.subscribe()
    return loop


def test_a_retired_tier_deleted_once_read_is_told_of_once_not_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = [Gone(RETIRED[0], 0, 0, None), Gone(RETIRED[0], 0, 0, None)]
    loop = retry_loop([gone, gone, [Gone(NOW.retry_topics[0], 0, 0, None)]])

    loop_logger = "dispatcher.engine.consumer"  # others may log too, when a test before set INFO
    with caplog.at_level(logging.INFO, logger=loop_logger):
        for _ in range(3):
            loop.step()

    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == loop_logger]
    assert said[0][0] == "INFO"
    assert said[0][1].startswith(f"retired retry tier {RETIRED[0]} is not in the cluster")
    # a configured tier's topic gone is something to fix: warned of, each time
    assert said[1:] == [("WARNING", f"consumer error: {Gone('', 0, 0, None).error()}")]
    assert not loop.stopping.is_set()
