"""The outcome writer: results written without a coroutine when the queue has room, and the
hand-off of pairs to a retry tier without awaiting (open circuits):
a pair alone as a tier record, several of one hook as a tier bundle."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.kafka.bundling import BUNDLE_BYTES
from dispatcher.kafka.writer import decode_failure_records, outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.bundle import unbundle
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import Outcome, RetryState, Source
from dispatcher.model.pair import Pair
from dispatcher.pipeline.conditions import holds
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.intake import Pairs, take_retry
from dispatcher.pipeline.judge import Verdict
from dispatcher.pipeline.match import HookIndex
from dispatcher.pipeline.render.target import request_target
from dispatcher.pipeline.retry import Handoff


class Producer:
    def __init__(self, full: bool = False) -> None:
        self.full = full
        self.produced: list[dict[str, Any]] = []

    def produce(self, topic: str, **record: Any) -> None:
        if self.full:
            raise BufferError("local queue full")
        self.produced.append({"topic": topic, **record})


def handoff(
    tier: int = 1,
    n: int = 0,
    hook_id: str = "b",
    value: bytes = b'{"id":"e"}',
    tenant: str | None = None,
) -> tuple[Handoff, Record]:
    owner = {} if tenant is None else {"tenant": tenant}
    hook = Hook.from_dict(
        {"id": hook_id, "events": ["x"], "url": "https://b.example.com/", **owner}
    )
    headers = (("traceparent", b"00-1-2-01"), ("dispatcher.attempts", b"9"))
    record = Record("t.retry", 2, 40 + n, b"k%d" % n, value, headers)
    pair = Pair(record, Event(f"e{n}", "x", "/s"), hook, Source("t", 3, 7 + n), f"msg_{n}")
    verdict = Verdict.failure("network", "circuit breaker open", retryable=True)
    return Handoff(pair, tier, 1_800_000_000.5 + n, 2, 1_799_999_000.25, verdict), record


def scheduled(metrics: Metrics, tier: int, hook_id: str = "b") -> float:
    name = Settings().topics.retry_topic(tier).rsplit(".", 1)[-1]
    labels = {"hook": hook_id, "tier": name}
    return metrics.registry.get_sample_value("dispatcher_retries_scheduled_total", labels) or 0


def test_a_hand_off_alone_is_one_tier_record_keeping_the_event_and_its_own_headers() -> None:
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = outcome_writer(producer, Settings(), metrics)
    result, _record = handoff()
    acked: list[bool] = []

    assert writer.hand_off([(result, lambda: acked.append(True))]) == []

    (produced,) = producer.produced
    assert produced["topic"] == Settings().topics.retry_topic(1)
    assert (produced["key"], produced["value"]) == (b"k0", b'{"id":"e"}')
    headers = produced["headers"]
    assert headers[0] == ("traceparent", b"00-1-2-01")  # the event's own, ours dropped
    tier_record = Record("x", 0, 0, None, None, tuple(headers))
    assert RetryState.from_record(tier_record) == RetryState(
        "b",
        2,
        1_799_999_000.25,
        1_800_000_000.5,
        Source("t", 3, 7),
        "msg_0",
        "network",
        "circuit breaker open",
    )
    produced["on_delivery"](None, None)
    assert acked == [True]
    assert scheduled(metrics, 1) == 1


def test_hand_offs_of_one_hook_and_tier_share_a_bundle_that_reads_back_as_each_record() -> None:
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = outcome_writer(producer, Settings(), metrics)
    given = [handoff(n=n) for n in range(3)]
    acked: list[int] = []

    refused = writer.hand_off([(h, lambda n=n: acked.append(n)) for n, (h, _r) in enumerate(given)])

    assert refused == []
    (produced,) = producer.produced
    assert produced["topic"] == Settings().topics.retry_topic(1)
    assert produced["key"] is None
    bundle = Record("t.retry.1m", 5, 90, None, produced["value"], tuple(produced["headers"]), 7)
    carried = unbundle(bundle)
    assert carried is not None
    for n, (record, state) in enumerate(carried):
        # the event's record as it was, at the bundle's place; the state a single record has
        assert record == Record(
            "t.retry.1m", 5, 90, b"k%d" % n, b'{"id":"e"}', given[n][1].headers[:1], 7
        )
        assert state == RetryState(
            "b",
            2,
            1_799_999_000.25,
            1_800_000_002.5,  # the bundle is due when its last pair is
            Source("t", 3, 7 + n),
            f"msg_{n}",
            "network",
            "circuit breaker open",
        )
    assert acked == []
    produced["on_delivery"](None, None)  # one acknowledgement ends them all
    assert acked == [0, 1, 2]
    assert scheduled(metrics, 1) == 3


def test_with_bundles_off_every_hand_off_is_a_tier_record_of_its_own() -> None:
    producer = Producer()
    writer = outcome_writer(producer, Settings(retry_bundles=False), Metrics(CollectorRegistry()))
    acked: list[int] = []
    given = [(handoff(n=n)[0], lambda n=n: acked.append(n)) for n in range(3)]

    assert writer.hand_off(given) == []

    assert [p["key"] for p in producer.produced] == [b"k0", b"k1", b"k2"]
    assert all("dispatcher.bundle" not in dict(p["headers"]) for p in producer.produced)
    for produced in producer.produced:
        produced["on_delivery"](None, None)
    assert acked == [0, 1, 2]


def test_a_bundled_pair_keeps_the_trace_context_of_its_hand_off() -> None:
    producer = Producer()
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    traced = [
        dataclasses.replace(
            handoff(n=n)[0], traceparent=f"00-{n:032x}-{n:016x}-01", tracestate="v=1"
        )
        for n in range(1, 3)
    ]

    writer.hand_off([(h, lambda: None) for h in traced])

    (produced,) = producer.produced
    carried = unbundle(Record("t", 0, 0, None, produced["value"], tuple(produced["headers"])))
    assert carried is not None
    assert [(s.traceparent, s.tracestate) for _, s in carried] == [
        (h.traceparent, "v=1") for h in traced
    ]


def test_hand_offs_of_other_hooks_or_tiers_go_in_records_of_their_own() -> None:
    producer = Producer()
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    given = [handoff(tier=0, n=0), handoff(tier=1, n=1), handoff(tier=0, n=2, hook_id="c")]
    given += [handoff(tier=0, n=3)]

    writer.hand_off([(h, lambda: None) for h, _r in given])

    kinds = sorted(
        (p["topic"], dict(p["headers"]).get("dispatcher.bundle", b"-")) for p in producer.produced
    )
    tiers = Settings().topics.retry_topic(0), Settings().topics.retry_topic(1)
    assert kinds == [(tiers[0], b"-"), (tiers[0], b"2"), (tiers[1], b"-")]


def test_a_bundle_is_cut_into_parts_that_each_stay_under_the_size_limit() -> None:
    producer = Producer()
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    value = b"x" * (BUNDLE_BYTES // 10)
    given = [handoff(n=n, value=value) for n in range(25)]
    done: list[int] = []

    writer.hand_off([(h, lambda n=n: done.append(n)) for n, (h, _r) in enumerate(given)])

    assert len(producer.produced) >= 4
    assert all(len(p["value"]) <= BUNDLE_BYTES for p in producer.produced)
    for produced in producer.produced:
        produced["on_delivery"](None, None)
    assert sorted(done) == list(range(25))


def test_a_full_producer_queue_returns_the_hand_offs_uncounted() -> None:
    metrics = Metrics(CollectorRegistry())
    writer = outcome_writer(Producer(full=True), Settings(), metrics)
    given = [(handoff(tier=0, n=n)[0], lambda: None) for n in range(3)]
    alone = [(handoff(tier=1)[0], lambda: None)]

    assert writer.hand_off(given + alone) == given + alone
    assert scheduled(metrics, 0) == scheduled(metrics, 1) == 0  # `write` counts what it writes


def test_a_refused_record_is_produced_again_and_an_acked_one_leaves_no_garbage_cycle() -> None:
    producer = Producer()
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    given = [handoff(n=n)[0] for n in range(2)]
    acked: list[bool] = []
    gc.collect()
    gc.disable()  # what the writer leaves behind stays until the next collection, below
    try:
        assert writer.hand_off([(h, lambda: acked.append(True)) for h in given]) == []
        first = producer.produced.pop()
        first["on_delivery"]("broker down", None)  # not acknowledged: queued again
        assert writer.unsent == 1
        assert acked == []
        writer.flush_unsent()
        again = producer.produced.pop()
        assert (again["topic"], again["value"]) == (first["topic"], first["value"])
        again["on_delivery"](None, None)
        assert acked == [True, True]
        assert writer.unsent == 0
        del first, again
        assert gc.collect() == 0  # every record's callback freed as it went, not by the collector
    finally:
        gc.enable()


def held(n: int, value: bytes = b'{"id":"e"}') -> tuple[Record, str]:
    """An input record held back at intake, with its pair's idempotency key."""
    headers = (("traceparent", b"00-1-2-01"),)
    return Record("dugaa.events", 4, 100 + n, b"k%d" % n, value, headers), f"msg_{n}"


def test_pairs_held_at_intake_go_to_the_first_tier_in_a_bundle_with_no_attempt_yet() -> None:
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = outcome_writer(producer, Settings(), metrics)
    given = [held(n) for n in range(3)]
    finished: list[int] = []
    now, due_at = 1_800_000_000.25, 1_800_000_030.25

    writer.hold_back(
        "b", given, due_at, ("network", "circuit breaker open"), now,
        lambda record: finished.append(record.offset),
    )  # fmt: skip

    (produced,) = producer.produced
    assert produced["topic"] == Settings().topics.retry_topic(0)
    bundle = Record("t.retry.30s", 1, 9, None, produced["value"], tuple(produced["headers"]), 7)
    carried = unbundle(bundle)
    assert carried is not None
    for (record, state), (event_record, key) in zip(carried, given, strict=True):
        assert (record.key, record.value, record.headers) == (
            event_record.key,
            event_record.value,
            event_record.headers,
        )
        # what `Deliverer.held_back` hands off for a fresh pair: no attempt, first seen now
        assert state == RetryState(
            "b",
            0,
            now,
            due_at,
            Source("dugaa.events", 4, event_record.offset),
            key,
            "network",
            "circuit breaker open",
        )
    assert finished == []
    produced["on_delivery"](None, None)
    assert finished == [100, 101, 102]
    assert scheduled(metrics, 0) == 3


def test_pairs_held_at_intake_are_cut_into_bundles_under_the_size_limit() -> None:
    producer = Producer()
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    given = [held(n, b"x" * (BUNDLE_BYTES // 10)) for n in range(25)]
    finished: list[int] = []

    writer.hold_back("b", given, 1.0, ("network", "x"), 0.5, lambda r: finished.append(r.offset))

    assert len(producer.produced) >= 4
    assert all(len(p["value"]) <= BUNDLE_BYTES for p in producer.produced)
    for produced in producer.produced:
        produced["on_delivery"](None, None)
    assert sorted(finished) == [100 + n for n in range(25)]


def test_pairs_held_at_intake_wait_in_the_unsent_queue_when_the_producer_queue_is_full() -> None:
    producer, metrics = Producer(full=True), Metrics(CollectorRegistry())
    writer = outcome_writer(producer, Settings(), metrics)
    finished: list[int] = []

    writer.hold_back("b", [held(0), held(1)], 1.0, ("network", "x"), 0.5,
                     lambda r: finished.append(r.offset))  # fmt: skip

    assert producer.produced == []
    assert writer.unsent == 1
    producer.full = False
    writer.flush_unsent()
    (produced,) = producer.produced
    produced["on_delivery"](None, None)
    assert finished == [100, 101]
    assert writer.unsent == 0


REFUSED = "dispatcher_outcome_records_refused_total"


def test_records_refused_alike_are_all_produced_again_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker gone for `message.timeout.ms` fails every record in flight at once."""
    producer, metrics = Producer(), Metrics(CollectorRegistry())
    writer = outcome_writer(producer, Settings(), metrics)
    given = [handoff(hook_id=f"h{n}")[0] for n in range(5)]  # a record each
    assert writer.hand_off([(h, lambda: None) for h in given]) == []
    for topic in (Settings().topics.results, Settings().topics.dead_letter):  # from the start
        sample = {"topic": topic}
        assert metrics.registry.get_sample_value(REFUSED, sample) == 0
    error = f"Local: Message timed out ({uuid.uuid4()})"  # no other test's line
    with caplog.at_level(logging.WARNING, "dispatcher.kafka.producing"):
        for record in producer.produced:
            record["on_delivery"](error, None)
    assert writer.unsent == 5
    assert [r.getMessage().count("not acknowledged") for r in caplog.records] == [1]
    topic = Settings().topics.retry_topic(1)
    assert metrics.registry.get_sample_value(REFUSED, {"topic": topic}) == 5


class FillingProducer(Producer):
    """Takes `room` records, then refuses with a full queue until `room` grows."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def produce(self, topic: str, **record: Any) -> None:
        if len(self.produced) >= self.room:
            raise BufferError("local queue full")
        super().produce(topic, **record)


def dead_lettered(n: int = 0) -> tuple[Outcome, Record]:
    record = Record("dugaa.events", 1, 50 + n, b"k", b'{"id":"e"}', ())
    outcome = Outcome(
        event_id=f"e{n}",
        event_type="x",
        hook_id="b",
        outcome="dead_lettered",
        attempts=1,
        idempotency_key=f"msg_{n}",
        source=Source("dugaa.events", 1, 50 + n),
        first_attempt_at=1_800_000_000.0,
        completed_at=1_800_000_001.0,
        http_status=400,
        error_kind="http_4xx",
        error="HTTP 400",
    )
    return outcome, record


def test_a_result_the_queue_takes_at_once_is_written_with_no_coroutine() -> None:
    producer = FillingProducer(room=2)
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    acked: list[bool] = []

    assert writer.put(*dead_lettered(), lambda: acked.append(True)) is None
    settings = Settings()
    topics = [record["topic"] for record in producer.produced]
    assert topics == [settings.topics.results, settings.topics.dead_letter]
    for record in producer.produced:
        record["on_delivery"](None, None)
    assert acked == [True]  # once, when both records are acknowledged


def test_a_result_the_queue_has_no_room_for_is_written_as_room_comes() -> None:
    producer = FillingProducer(room=1)
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    acked: list[bool] = []

    async def run() -> None:
        rest = writer.put(*dead_lettered(), lambda: acked.append(True))
        assert rest is not None
        assert len(producer.produced) == 1  # the result; its dead letter waits for room
        waiting = asyncio.ensure_future(rest)
        await asyncio.sleep(0.02)
        assert not waiting.done()
        producer.room = 2
        await asyncio.wait_for(waiting, 5)

    asyncio.run(run())
    assert [r["topic"] for r in producer.produced][1] == Settings().topics.dead_letter
    for record in producer.produced:
        record["on_delivery"](None, None)
    assert acked == [True]


def test_a_bundle_holds_the_pairs_of_one_consumed_partition_only() -> None:
    """A revoke drops what is unsent of its partition: a bundle shared with another partition
    would drop that one's pairs too, or write the revoked one's."""
    producer = Producer()
    writer = outcome_writer(producer, Settings(), Metrics(CollectorRegistry()))
    other = Record("dugaa.events", 5, 200, b"k", b'{"id":"e"}', ())
    held_pairs = [held(0), held(1), (other, "msg_x")]

    writer.hold_back("b", held_pairs, 1.0, ("network", "x"), 0.5, lambda _r: None)
    moved = [handoff(n=n)[0] for n in range(2)]
    pair = dataclasses.replace(
        moved[1].pair, record=dataclasses.replace(moved[1].pair.record, partition=9)
    )
    moved[1] = dataclasses.replace(moved[1], pair=pair)
    moved.append(handoff(n=2)[0])
    writer.hand_off([(h, lambda: None) for h in moved])

    counts = [dict(p["headers"]).get("dispatcher.bundle") for p in producer.produced]
    assert counts == [b"2", b"1", b"2", None]  # held: 4 and 5; handed off: 2, then 9 alone


def test_the_dead_letter_of_a_tier_pair_whose_event_no_longer_decodes_keeps_the_pair() -> None:
    """Its hook, webhook-id, attempts and where its event entered (not the tier record's
    place), so that `dispatcher replay` sends it once it decodes again."""
    topics = Settings().topics
    tier_record = Record(topics.retry_topic(0), 4, 12, b"order-1", b"\x00avro", ())
    state = RetryState("erp", 3, 1_799_999_000.25, 1_800_000_000.0, Source("t", 1, 7), "msg_7")

    (letter,) = decode_failure_records(
        topics, tier_record, "schema registry unreachable", 1_800_000_001.0, state=state
    )
    (alone,) = decode_failure_records(topics, tier_record, "not an event", 1_800_000_001.0)

    headers = dict(letter.headers)
    assert (letter.topic, letter.key, letter.value) == (topics.dead_letter, b"order-1", b"\x00avro")
    assert headers["dispatcher.hook.id"] == b"erp"
    assert headers["dispatcher.idempotency.key"] == b"msg_7"
    assert headers["dispatcher.attempts"] == b"3"
    assert [headers[f"dispatcher.source.{n}"] for n in ("topic", "partition", "offset")] == [
        b"t",
        b"1",
        b"7",
    ]
    assert headers["dispatcher.error.kind"] == b"decode"
    without = dict(alone.headers)  # a record that never was an event: the record is its source
    assert (without["dispatcher.hook.id"], without["dispatcher.idempotency.key"]) == (b"", b"")
    assert without["dispatcher.source.topic"] == topics.retry_topic(0).encode()
    assert without["dispatcher.source.offset"] == b"12"


def test_the_records_ending_a_pair_name_the_tenant_its_hook_has() -> None:
    """The result and the dead letter say whose they are: the hook's tenant as the pair
    carries it, beside the event's `tenant`; nothing for a hook of every tenant."""
    writer = outcome_writer(Producer(), Settings(), Metrics(CollectorRegistry()))
    record = Record("t", 0, 5, b"k", b'{"id":"e"}', ())
    end = Outcome("e", "x", "audit", "dead_lettered", 1, "msg_e", Source("t", 0, 5), 1.0, 2.0,
                  400, 3.0, "http_status", "HTTP 400", tenant="acme", hook_tenant="acme")  # fmt: skip

    result, letter = writer.records_for(end, record)
    assert json.loads(result.value or b"")["hook_tenant"] == "acme"
    assert dict(letter.headers)["dispatcher.hook.tenant"] == b"acme"

    result, letter = writer.records_for(dataclasses.replace(end, hook_tenant=None), record)
    assert "hook_tenant" not in json.loads(result.value or b"")
    assert "dispatcher.hook.tenant" not in dict(letter.headers)


def test_the_dead_letter_of_a_tier_pair_that_no_longer_decodes_names_its_hook_tenant() -> None:
    topics = Settings().topics
    tier_record = Record(topics.retry_topic(0), 4, 12, b"order-1", b"\x00avro", ())
    state = RetryState("erp", 3, 1_799_999_000.25, 1_800_000_000.0, Source("t", 1, 7), "msg_7")

    (letter,) = decode_failure_records(
        topics, tier_record, "gone", 1_800_000_001.0, state=state, hook_tenant="acme"
    )

    assert dict(letter.headers)["dispatcher.hook.tenant"] == b"acme"


def tier_states(produced: list[dict[str, Any]]) -> list[RetryState]:
    """The pairs' states in tier records and bundles as a worker reads them back."""
    states: list[RetryState] = []
    for out in produced:
        record = Record("t.retry", 0, 1, out["key"], out["value"], tuple(out["headers"]))
        carried = unbundle(record) if "dispatcher.bundle" in dict(out["headers"]) else None
        states += [s for _r, s in carried] if carried else [RetryState.from_record(record)]
    return states


@pytest.mark.parametrize("bundles", [True, False])
def test_a_tier_record_names_the_tenant_of_its_hook_for_when_the_hook_is_gone(
    bundles: bool,
) -> None:
    """A hook deleted while its pairs wait in a tier is known from its tier records only: its
    pairs' dead letters name its tenant from them, so its tenant's admin sees them."""
    producer = Producer()
    writer = outcome_writer(producer, Settings(retry_bundles=bundles), Metrics(CollectorRegistry()))
    acme = [handoff(n=n, tenant="acme")[0] for n in range(2)]

    writer.hand_off([(h, lambda: None) for h in acme])
    writer.hold_back("b", [held(0), held(1)], 1.0, ("network", "x"), 0.5, lambda _r: None, "acme")
    writer.hand_off([(handoff(hook_id="everyone")[0], lambda: None)])

    assert [s.hook_tenant for s in tier_states(producer.produced)] == ["acme"] * 4 + [None]


@pytest.mark.parametrize("bundles", [True, False], ids=["bundle", "single"])
def test_a_tier_pass_keeps_the_events_extensions_so_a_filter_on_them_still_holds(
    bundles: bool,
) -> None:
    """A tier record carries the event's record unchanged: its extensions (a structured event's
    member, a binary one's `ce_` header) decode again on the tier pass, for filters and headers."""
    erp = Hook.from_dict(
        {
            "id": "erp",
            "events": ["order.placed"],
            "url": "https://erp.example.com/",
            "headers": {"X-Region": "{extensions.region}"},
            "filter": [{"path": "extensions.region", "equals": "eu"}],
        }
    )
    attributes = {"specversion": "1.0", "type": "order.placed", "source": "/shop"}
    structured = json.dumps({**attributes, "id": "s", "region": "eu", "data": {}}).encode()
    ce = tuple((f"ce_{k}", v.encode()) for k, v in {**attributes, "id": "b"}.items())
    records = [
        Record("dugaa.events", 0, 1, b"k1", structured, ()),
        Record("dugaa.events", 0, 2, b"k2", b"{}", (*ce, ("ce_region", b"eu"))),
    ]
    handoffs = []
    for record in records:
        pair = Pair(record, decode(record), erp, Source("dugaa.events", 0, record.offset), "msg")
        verdict = Verdict.failure("network", "circuit breaker open", retryable=True)
        handoffs.append(
            (Handoff(pair, 0, 1_800_000_000.0, 2, 1_799_999_000.0, verdict), lambda: None)
        )
    producer = Producer()
    writer = outcome_writer(producer, Settings(retry_bundles=bundles), Metrics(CollectorRegistry()))

    assert writer.hand_off(handoffs) == []

    tier = Settings().topics.retry_topic(0)
    passed = []
    for n, produced in enumerate(producer.produced):
        record = Record(tier, 0, n, produced["key"], produced["value"], tuple(produced["headers"]))
        taken = take_retry(record, 0, HookIndex([erp]), decode, now=1_800_000_001.0)
        assert isinstance(taken, Pairs)
        passed += taken.pairs
    assert [pair.event.id for pair in passed] == ["s", "b"]
    for pair in passed:
        assert pair.event.extensions == {"region": "eu"}
        assert holds(erp.filter, pair.event.attributes())
        assert ("X-Region", "eu") in request_target(erp, pair.event)[1]
