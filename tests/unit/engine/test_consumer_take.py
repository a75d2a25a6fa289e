"""How the consumer thread takes retry-tier records in: a tier bundle fills the window at once,
and the records behind it wait, unread, until the window has room."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kafka_fakes import FakeMessage, PausingConsumer
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.consumer import ConsumerLoop
from dispatcher.engine.outage import RegistryOutage
from dispatcher.engine.pauses import Pauses
from dispatcher.engine.tracker import OffsetTracker
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.bundle import bundle_entry, bundle_record
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Source
from dispatcher.model.pair import Pair
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.match import HookIndex

TIER = "dugaa.dispatch.retry.30s"
KEY = (TIER, 0)
EVENT = b'{"specversion":"1.0","id":"e1","type":"order.paid","source":"/s"}'


def bundle_at(offset: int, pairs: int) -> FakeMessage:
    event = Record("dugaa.events", 0, 0, None, EVENT, ())
    entries = [
        bundle_entry(event, (), 1, 1_799_999_000.0, Source("dugaa.events", 0, n), f"msg_{n}")
        for n in range(pairs)
    ]
    headers, value = bundle_record(entries, "crm", 1_700_000_000.0, "network", "breaker open")
    return FakeMessage(TIER, 0, offset, value, list(headers), _timestamp=(1, 1_800_000_000_000))


def loop(per_partition: int) -> tuple[ConsumerLoop, list[Pair], PausingConsumer]:
    """A loop with only what `_take` reads of a retry tier."""
    consumer, submitted = PausingConsumer(), []
    taking = ConsumerLoop.__new__(ConsumerLoop)
    taking.settings = SimpleNamespace(  # type: ignore[assignment]
        max_inflight=10_000, max_inflight_per_partition=per_partition
    )
    taking.tracker = OffsetTracker()
    taking.pauses = Pauses(consumer, per_partition, 10_000)
    taking.outage = RegistryOutage(Metrics(CollectorRegistry()).registry_held_partitions)
    taking.tiers = {TIER: 0}
    taking.assigned = {KEY}
    hooks = HookIndex(
        [Hook.from_dict({"id": "crm", "events": ["order.*"], "url": "https://x.example.com"})]
    )
    taking.hooks = lambda: hooks  # type: ignore[method-assign]
    taking.decode = decode
    taking.metrics = SimpleNamespace()  # type: ignore[assignment]
    taking.submit = submitted.extend  # type: ignore[assignment]
    return taking, submitted, consumer


def test_a_bundle_that_fills_the_window_leaves_the_records_behind_it_for_later() -> None:
    taking, submitted, consumer = loop(per_partition=50)

    taking._take([bundle_at(5, 50), bundle_at(6, 50), bundle_at(7, 2)])

    assert len(submitted) == 50  # the first bundle's pairs, and no more
    assert all(pair.bundle is not None and pair.bundle.offset == 5 for pair in submitted)
    assert taking.tracker.pending(*KEY) == 50
    assert consumer.paused == {KEY}
    assert consumer.seeks == [(TIER, 0, 6)]  # read again once the window has room


def test_bundles_within_the_window_are_all_taken_in() -> None:
    taking, submitted, consumer = loop(per_partition=200)

    taking._take([bundle_at(5, 50), bundle_at(6, 50), bundle_at(7, 2)])

    assert len(submitted) == 102
    assert taking.tracker.pending(*KEY) == 102
    assert consumer.paused == set()


class _Produced:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def produce(self, topic: str, **record: Any) -> None:
        self.records.append({"topic": topic, **record})


def test_fresh_pairs_of_a_holding_hook_go_to_the_first_tier_from_the_consumer_thread() -> None:
    """The crm hook's circuit is open: its pairs of the input batch become one bundle on the
    first tier, produced here; the sms hook's pairs go to the delivery loop as ever. An
    event's offset is done once both its pair and its held pair have ended."""
    settings = Settings()
    events = settings.topics.events[0]
    producer, metrics = _Produced(), Metrics(CollectorRegistry())
    taking, submitted, _consumer = loop(per_partition=1000)
    taking.settings = settings
    taking.assigned = {(events, 0)}
    taking.tiers = {}
    taking.metrics = metrics
    taking._consumed_by_topic = {}
    taking.writer = outcome_writer(producer, settings, metrics)
    taking.holding = lambda: frozenset({"crm"})  # type: ignore[method-assign]
    hooks = HookIndex(
        [
            Hook.from_dict({"id": "sms", "events": ["order.*"], "url": "https://s.example.com"}),
            Hook.from_dict({"id": "crm", "events": ["order.*"], "url": "https://c.example.com"}),
        ]
    )
    taking.hooks = lambda: hooks  # type: ignore[method-assign]

    taking._take([FakeMessage(events, 0, n, EVENT) for n in range(3)])

    assert [(p.hook.id, p.record.offset) for p in submitted] == [("sms", 0), ("sms", 1), ("sms", 2)]
    (bundle,) = producer.records
    assert bundle["topic"] == settings.topics.retry_topic(0)
    assert dict(bundle["headers"])["dispatcher.bundle"] == b"3"
    assert taking.tracker.pending(events, 0) == 3
    for pair in submitted:  # the sms pairs end first: the crm ones still hold every offset
        taking.finish(pair)()
    assert taking.tracker.advance() == {}
    bundle["on_delivery"](None, None)  # the bundle is acknowledged
    assert taking.tracker.advance() == {(events, 0): 3}
    assert taking.tracker.pending(events, 0) == 0
