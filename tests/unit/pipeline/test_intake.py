"""Intake: records from input topics and retry tiers become pairs, dead letters or a wait."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from dispatcher.errors import RegistryUnavailable
from dispatcher.model.bundle import bundle_entry, bundle_record
from dispatcher.model.deferral import deferred_headers
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import RetryState, Source, idempotency_key
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.intake import (
    NotYetDue,
    Outage,
    Pairs,
    Undecodable,
    take_event,
    take_retry,
)
from dispatcher.pipeline.match import HookIndex

NOW = 1_793_611_800.0
EVENT = {"specversion": "1.0", "id": "ev-1", "type": "order.shipped", "source": "/orders"}


def hook(hook_id: str, *events: str, **extra: Any) -> Hook:
    return Hook.from_dict(
        {"id": hook_id, "events": list(events), "url": "https://x.example.com", **extra}
    )


HOOKS = HookIndex(
    [
        hook("sms", "order.shipped"),
        hook("crm", "order.*"),
        hook("mail", "invoice.*"),
        hook("off", "order.*", enabled=False),
    ]
)


def record(
    value: bytes | None = None,
    headers: tuple[tuple[str, bytes], ...] = (),
    topic: str = "dugaa.events",
    offset: int = 41,
) -> Record:
    if value is None:
        value = json.dumps({**EVENT, "data": {"n": 1}}).encode()
    return Record(topic, 3, offset, b"key-7", value, headers)


def test_an_event_becomes_one_pair_per_matching_hook_in_definition_order() -> None:
    rec = record()

    taken = take_event(rec, HOOKS, decode)

    assert isinstance(taken, Pairs)
    assert [p.hook.id for p in taken.pairs] == ["sms", "crm"]
    for pair in taken.pairs:
        assert pair.record is rec
        assert pair.event.id == "ev-1"
        assert pair.event.data == {"n": 1}
        assert pair.source == Source("dugaa.events", 3, 41)
        assert pair.idempotency_key == idempotency_key(pair.event, pair.hook.id)
        assert pair.attempts == 0
        assert pair.first_attempt_at is None
        assert pair.tier == -1
        assert (pair.record.topic, pair.record.partition, pair.record.offset) == (
            "dugaa.events",
            3,
            41,
        )
    assert taken.pairs[0].idempotency_key != taken.pairs[1].idempotency_key


def test_an_event_no_hook_wants_has_no_pairs() -> None:
    value = json.dumps({**EVENT, "type": "user.created"}).encode()

    assert take_event(record(value), HOOKS, decode) == Pairs(())


def test_an_undecodable_event_says_why() -> None:
    taken = take_event(record(b"{broken"), HOOKS, decode)

    assert isinstance(taken, Undecodable)
    assert "JSON" in taken.error


def test_the_idempotency_key_depends_on_event_and_hook_only() -> None:
    first = take_event(record(offset=1), HOOKS, decode)
    again = take_event(record(offset=99, topic="other"), HOOKS, decode)

    assert isinstance(first, Pairs)
    assert isinstance(again, Pairs)
    assert [p.idempotency_key for p in first.pairs] == [p.idempotency_key for p in again.pairs]


STATE = RetryState(
    hook_id="crm",
    attempts=4,
    first_attempt_at=NOW - 100,
    due_at=NOW,
    source=Source("dugaa.events", 3, 41),
    idempotency_key="msg_original",
    last_error_kind="http_status",
    last_error="HTTP 503",
)
TIER_TOPIC = "dugaa.dispatch.retry.30s"


def retry_record(state: RetryState = STATE, value: bytes | None = None) -> Record:
    headers = (("traceparent", b"00-1-01"), *state.headers())
    return record(value, headers, topic=TIER_TOPIC, offset=5)


def with_state(**changes: Any) -> RetryState:
    values = {name: getattr(STATE, name) for name in RetryState.__slots__}
    values.update(changes)
    return RetryState(**values)


def test_a_due_retry_record_is_one_pair_to_its_own_hook_carrying_its_state() -> None:
    rec = retry_record()

    taken = take_retry(rec, 1, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    [pair] = taken.pairs
    assert pair.hook.id == "crm"
    assert pair.record is rec
    assert pair.source == Source("dugaa.events", 3, 41)
    assert (pair.record.topic, pair.record.partition, pair.record.offset) == (TIER_TOPIC, 3, 5)
    assert pair.idempotency_key == "msg_original"
    assert pair.attempts == 4
    assert pair.first_attempt_at == NOW - 100
    assert pair.tier == 1
    assert pair.event.id == "ev-1"


def test_a_retry_record_before_its_due_time_waits() -> None:
    rec = retry_record(with_state(due_at=NOW + 25))

    assert take_retry(rec, 0, HOOKS, decode, now=NOW) == NotYetDue(NOW + 25)


def test_a_retry_record_is_due_at_exactly_its_due_time() -> None:
    assert isinstance(take_retry(retry_record(), 0, HOOKS, decode, now=NOW), Pairs)


def test_a_retry_record_for_a_deleted_hook_is_a_pair_to_an_unusable_stand_in() -> None:
    """Never dropped unrecorded: the pair ends as a `config` dead letter, no request made, and
    keeps what a replay needs once the hook is back."""
    rec = retry_record(with_state(hook_id="gone"))

    taken = take_retry(rec, 1, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    [pair] = taken.pairs
    assert (pair.hook.id, pair.hook.url) == ("gone", "")
    assert pair.hook.unusable == "hook gone was deleted while the pair waited in a retry tier"
    assert (pair.idempotency_key, pair.attempts, pair.source) == (
        "msg_original",
        4,
        Source("dugaa.events", 3, 41),
    )
    assert pair.record is rec


def test_a_retry_record_for_a_disabled_hook_is_a_pair_to_it_marked_unusable() -> None:
    rec = retry_record(with_state(hook_id="off"))

    taken = take_retry(rec, 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    [pair] = taken.pairs
    assert pair.hook.id == "off"
    assert pair.hook.unusable == "hook off was disabled while the pair waited in a retry tier"
    assert pair.idempotency_key == "msg_original"


def test_a_retry_record_without_valid_state_headers_is_undecodable() -> None:
    taken = take_retry(record(topic=TIER_TOPIC), 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Undecodable)
    assert "dispatcher." in taken.error


def test_a_retry_record_whose_event_no_longer_decodes_is_that_records_dead_letter() -> None:
    rec = retry_record(value=b"[]")

    taken = take_retry(rec, 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    assert taken.pairs == ()
    [(dead, why)] = taken.undecodable
    assert dead is rec
    assert why.error
    assert why.state == STATE  # the pair's hook, webhook-id and source stay on its letter
    assert why.hook_tenant is None  # crm serves every tenant


def test_the_dead_letter_of_a_tier_event_that_no_longer_decodes_names_its_hook_tenant() -> None:
    hooks = HookIndex([hook("crm", "order.*", tenant="acme")])

    taken = take_retry(retry_record(value=b"[]"), 0, hooks, decode, now=NOW)

    assert isinstance(taken, Pairs)
    [(_dead, why)] = taken.undecodable
    assert why.hook_tenant == "acme"


def bundle(*values: bytes | None, due_at: float = NOW, hook_id: str = "crm") -> Record:
    """A tier bundle of the events `values` (None: a valid event), offset 9 of TIER_TOPIC."""
    entries = [
        bundle_entry(
            record(value, (("traceparent", b"00-%d-01" % n),), offset=n),
            (("traceparent", b"00-%d-01" % n),),
            n,
            NOW - 100 - n,
            Source("dugaa.events", 3, 40 + n),
            f"msg_{n}",
        )
        for n, value in enumerate(values)
    ]
    headers, value = bundle_record(entries, hook_id, due_at, "network", "circuit breaker open")
    return Record(TIER_TOPIC, 2, 9, None, value, headers, 1234)


def test_a_due_bundle_is_one_pair_per_event_each_carrying_its_own_state() -> None:
    rec = bundle(None, None, None)

    taken = take_retry(rec, 1, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    assert len(taken.pairs) == 3
    for n, pair in enumerate(taken.pairs):
        assert pair.bundle is rec  # its completion counts for the bundle
        assert pair.record.headers == (("traceparent", b"00-%d-01" % n),)
        assert (pair.record.topic, pair.record.partition, pair.record.offset) == (TIER_TOPIC, 2, 9)
        assert pair.record.key == b"key-7"
        assert pair.hook.id == "crm"
        assert pair.source == Source("dugaa.events", 3, 40 + n)
        assert pair.idempotency_key == f"msg_{n}"
        assert (pair.attempts, pair.first_attempt_at, pair.tier) == (n, NOW - 100 - n, 1)
        assert pair.event.id == "ev-1"


def test_a_bundle_before_its_due_time_waits() -> None:
    assert take_retry(bundle(None, None, due_at=NOW + 5), 0, HOOKS, decode, now=NOW) == NotYetDue(
        NOW + 5
    )


def test_every_pair_of_a_bundle_for_a_disabled_hook_goes_to_it_marked_unusable() -> None:
    rec = bundle(None, None, hook_id="off")

    taken = take_retry(rec, 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    assert [p.idempotency_key for p in taken.pairs] == ["msg_0", "msg_1"]
    assert {p.hook.unusable for p in taken.pairs} == {
        "hook off was disabled while the pair waited in a retry tier"
    }
    assert {p.bundle for p in taken.pairs} == {rec}


def test_an_event_of_a_bundle_that_no_longer_decodes_is_its_own_dead_letter() -> None:
    taken = take_retry(bundle(None, b"[]", None), 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    assert [p.idempotency_key for p in taken.pairs] == ["msg_0", "msg_2"]
    [(dead, why)] = taken.undecodable
    assert (dead.topic, dead.partition, dead.offset, dead.value) == (TIER_TOPIC, 2, 9, b"[]")
    assert why.error
    assert why.state is not None
    assert (why.state.hook_id, why.state.idempotency_key, why.state.attempts) == ("crm", "msg_1", 1)
    assert why.state.source == Source("dugaa.events", 3, 41)


def test_a_broken_bundle_is_undecodable() -> None:
    rec = bundle(None, None)
    broken = Record(rec.topic, rec.partition, rec.offset, None, rec.value[:-5], rec.headers)

    taken = take_retry(broken, 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Undecodable)
    assert "bundle" in taken.error


def test_a_retry_record_is_decoded_only_once_due() -> None:
    calls: list[Record] = []

    def counting(rec: Record) -> Event:
        calls.append(rec)
        return decode(rec)

    take_retry(retry_record(with_state(due_at=NOW + 1)), 0, HOOKS, counting, now=NOW)
    assert calls == []
    take_retry(retry_record(), 0, HOOKS, counting, now=NOW)
    assert len(calls) == 1


def test_a_hook_whose_filter_fails_gets_no_pair_and_is_named_as_filtered() -> None:
    hooks = HookIndex(
        [
            hook("big", "order.shipped", filter=[{"path": "data.n", "gt": 1}]),
            hook("small", "order.shipped", filter=[{"path": "data.n", "lte": 1}]),
            hook("acme", "order.shipped", tenant="acme"),
        ]
    )

    taken = take_event(record(), hooks, decode)

    assert isinstance(taken, Pairs)
    assert [p.hook.id for p in taken.pairs] == ["small"]
    assert taken.filtered == ("big",)  # another tenant's hook is not filtered: not matched
    acme = json.dumps({**EVENT, "tenant": "acme", "data": {"n": 5}}).encode()
    taken = take_event(record(acme), hooks, decode)
    assert isinstance(taken, Pairs)
    assert [p.hook.id for p in taken.pairs] == ["big", "acme"]
    assert taken.filtered == ("small",)


def test_the_pairs_of_a_holding_hook_are_held_by_id_and_key_with_no_pair_of_their_own() -> None:
    rec = record()

    taken = take_event(rec, HOOKS, decode, holding={"crm", "mail"})
    plain = take_event(rec, HOOKS, decode)

    assert isinstance(taken, Pairs)
    assert isinstance(plain, Pairs)
    sms, crm = plain.pairs
    assert taken.pairs == (sms,)  # the other hooks' pairs as ever
    # "mail" is not matched: holding only concerns the hooks the event goes to
    assert taken.held == (("crm", crm.idempotency_key),)
    assert (taken.ends, plain.ends) == (2, 2)  # the record waits for as many ends either way


def test_a_holding_hook_whose_filter_refuses_the_event_only_counts_it() -> None:
    hooks = HookIndex([hook("crm", "order.*", filter=[{"path": "data.n", "equals": 2}])])

    taken = take_event(record(), hooks, decode, holding={"crm"})

    assert taken == Pairs((), ("crm",))


def registry_away(value: bytes) -> Any:
    """A decoder to which the schema registry is away for the records whose value is `value`."""

    def decoding(record: Record) -> Event:
        if record.value == value:
            raise RegistryUnavailable("schema id 7", "ConnectError: connection refused")
        return decode(record)

    return decoding


def test_an_event_whose_schema_registry_is_away_is_an_outage_not_a_dead_letter() -> None:
    taken = take_event(record(b"\x00avro"), HOOKS, registry_away(b"\x00avro"))

    assert taken == Outage(
        "schema registry unavailable for schema id 7: ConnectError: connection refused"
    )


def test_a_retry_record_whose_schema_registry_is_away_waits_whole() -> None:
    taken = take_retry(
        bundle(None, b"\x00avro", None), 0, HOOKS, registry_away(b"\x00avro"), now=NOW
    )

    assert isinstance(taken, Outage)  # no pair of it sent, no dead letter: all read again


def deferred(value: bytes | None = None, due_at: float = NOW) -> Record:
    """The first tier's record of the input record at dugaa.events[3]@41, deferred by a share
    group while the schema registry was away."""
    entered = record(value)
    headers = deferred_headers(entered, due_at, "schema registry unavailable")
    return Record(TIER_TOPIC, 0, 5, entered.key, entered.value, headers)


def test_a_deferred_event_is_taken_in_as_fresh_pairs_where_it_entered() -> None:
    rec = deferred()

    taken = take_retry(rec, 0, HOOKS, decode, now=NOW)

    fresh = take_event(record(), HOOKS, decode)
    assert isinstance(taken, Pairs)
    assert isinstance(fresh, Pairs)
    assert [p.hook.id for p in taken.pairs] == ["sms", "crm"]
    for pair, as_input in zip(taken.pairs, fresh.pairs, strict=True):
        assert pair.record is rec  # its completion counts for the tier record
        assert pair.source == Source("dugaa.events", 3, 41)
        assert pair.idempotency_key == as_input.idempotency_key
        assert (pair.attempts, pair.first_attempt_at, pair.tier) == (0, None, -1)


def test_a_deferred_event_waits_for_its_due_time() -> None:
    assert take_retry(deferred(due_at=NOW + 1), 0, HOOKS, decode, now=NOW) == NotYetDue(NOW + 1)


def test_a_deferred_event_waits_again_while_the_schema_registry_is_away() -> None:
    taken = take_retry(deferred(b"\x00avro"), 0, HOOKS, registry_away(b"\x00avro"), now=NOW)

    assert isinstance(taken, Outage)


def test_a_deferred_event_that_does_not_decode_is_a_dead_letter_naming_where_it_entered() -> None:
    taken = take_retry(deferred(b"[]"), 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Undecodable)
    assert taken.kind == "decode"
    assert taken.state is not None
    assert (taken.state.hook_id, taken.state.source) == ("", Source("dugaa.events", 3, 41))


def test_a_deferred_events_record_without_its_source_is_undecodable() -> None:
    rec = deferred()
    headers = tuple((k, v) for k, v in rec.headers if k != "dispatcher.source.offset")

    taken = take_retry(dataclasses.replace(rec, headers=headers), 0, HOOKS, decode, now=NOW)

    assert isinstance(taken, Undecodable)
    assert "deferred" in taken.error


def test_the_stand_in_for_a_deleted_hook_has_the_tenant_its_tier_record_names() -> None:
    """So the pair's `config` result and dead letter name the hook's tenant, as the hook's
    own would have: its tenant's admin sees and replays them once the hook is back."""
    carried = retry_record(with_state(hook_id="gone", hook_tenant="acme"))

    taken = take_retry(carried, 1, HOOKS, decode, now=NOW)

    assert isinstance(taken, Pairs)
    [pair] = taken.pairs
    assert (pair.hook.id, pair.hook.tenant) == ("gone", "acme")
    assert pair.hook.unusable is not None
