"""How the consumer thread takes retry-tier records in: a tier bundle fills the window at once,
and the records behind it wait, unread, until the window has room; a retired tier's records
(a tier `topics.retry` no longer names) are due at their own time and go on to the configured
tiers."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from kafka_fakes import FakeMessage, PausingConsumer
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.consumer import ConsumerLoop, tier_indexes
from dispatcher.engine.outage import RegistryOutage
from dispatcher.engine.pauses import Pauses
from dispatcher.engine.tracker import OffsetTracker
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.bundle import bundle_entry, bundle_record
from dispatcher.model.event import Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Source, retry_headers
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


def test_pairs_held_at_intake_name_their_hooks_tenant_on_their_tier_bundle() -> None:
    """Were the hook deleted while they wait, their dead letters name its tenant from there."""
    settings = Settings()
    events = settings.topics.events[0]
    producer, metrics = _Produced(), Metrics(CollectorRegistry())
    taking, _submitted, _consumer = loop(per_partition=1000)
    taking.settings, taking.assigned, taking.tiers = settings, {(events, 0)}, {}
    taking.metrics, taking._consumed_by_topic = metrics, {}
    taking.writer = outcome_writer(producer, settings, metrics)
    taking.holding = lambda: frozenset({"crm"})  # type: ignore[method-assign]
    crm = {"id": "crm", "events": ["order.*"], "url": "https://c.example.com", "tenant": "acme"}
    hooks = HookIndex([Hook.from_dict(crm)])
    taking.hooks = lambda: hooks  # type: ignore[method-assign]
    acme_event = EVENT[:-1] + b',"tenant":"acme"}'

    taking._take([FakeMessage(events, 0, 0, acme_event)])

    (bundle,) = producer.records
    assert dict(bundle["headers"])["dispatcher.hook.tenant"] == b"acme"


RETIRED = "dugaa.dispatch.retry.2m"  # the default tiers are [30s, 5m, 1h]


def retired_record(offset: int, due_at: float) -> FakeMessage:
    source = Source("dugaa.events", 0, offset)
    headers = retry_headers("crm", 2, due_at - 150, due_at, source, f"msg_{offset}", "network", "")
    return FakeMessage(RETIRED, 0, offset, EVENT, list(headers))


def test_a_retired_tiers_records_are_taken_in_at_their_own_due_time() -> None:
    """Read in the retry group after `topics.retry` changed: its head record, due, is taken in
    as a pair of the tier before 5m (it goes on to 5m, not back to 30s, if it fails again);
    the record behind it holds the partition until its own due time, not the 2m delay's."""
    taking, submitted, consumer = loop(per_partition=50)
    taking.tiers = tier_indexes(Settings().topics, ["dugaa.dispatch.retry.30s", RETIRED])
    taking.assigned = {(RETIRED, 0)}
    later = round(time.time()) + 3000.0  # as the header writes it: to the millisecond

    taking._take([retired_record(7, time.time() - 1), retired_record(8, later)])

    assert [(pair.record.offset, pair.tier, pair.attempts) for pair in submitted] == [(7, 0, 2)]
    assert consumer.paused == {(RETIRED, 0)}
    assert consumer.seeks == [(RETIRED, 0, 8)]
    assert taking.pauses.waiting == {(RETIRED, 0): later}


def test_a_loop_counts_the_retired_tiers_of_its_subscription_among_its_tiers() -> None:
    topics = Settings().topics  # [30s, 5m, 1h]
    retired = ["dugaa.dispatch.retry.10s", RETIRED, "dugaa.dispatch.retry.2h"]

    assert tier_indexes(topics, [*topics.retry_topics, *retired]) == {
        "dugaa.dispatch.retry.30s": 0,
        "dugaa.dispatch.retry.5m": 1,
        "dugaa.dispatch.retry.1h": 2,
        "dugaa.dispatch.retry.10s": -1,  # on to 30s
        RETIRED: 0,  # on to 5m
        "dugaa.dispatch.retry.2h": 2,  # on to 1h, the last
    }
    assert tier_indexes(topics, list(topics.events)) == {
        topic: index for index, topic in enumerate(topics.retry_topics)
    }
