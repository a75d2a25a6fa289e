"""Which dead letters a replay takes, and which of those it sends: pure selection and planning."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from dispatcher.kafka.avro.decoder import EVENT_CONTENT_TYPE, encode_event, event_decoder
from dispatcher.model.deadletter import REPLAY_OF, DeadLetter
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.moments import parse_iso
from dispatcher.model.outcome import VALUE_OMITTED, Source
from dispatcher.ops.replay.plan import plan, reasons, select
from dispatcher.ops.replay.selection import Selection, parse_moment, selection_from
from dispatcher.pipeline.match import HookIndex

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()


def event(offset: int, **attributes: object) -> bytes:
    """A structured CloudEvent of type `x` (the type the `hooks` below take), as JSON."""
    document = {"specversion": "1.0", "id": f"ev-{offset}", "type": "x", "source": "/s"}
    return json.dumps({**document, "data": {"n": offset}, **attributes}).encode()


def letter(
    offset: int,
    *,
    hook: str = "tax",
    kind: str = "http_status",
    key: str | None = None,
    failed_at: str | None = "2026-11-29T10:00:00.000Z",
    partition: int = 0,
    value: bytes | None = None,
    omitted: str | None = None,
    content_type: str = "application/cloudevents+json",
) -> DeadLetter:
    headers = [
        ("content-type", content_type.encode()),
        ("dispatcher.hook.id", hook.encode()),
        ("dispatcher.error.kind", kind.encode()),
        ("dispatcher.idempotency.key", (key or f"msg_{offset}").encode()),
        ("dispatcher.source.topic", b"events"),
        ("dispatcher.source.partition", b"3"),
        ("dispatcher.source.offset", str(100 + offset).encode()),
    ]
    if failed_at is not None:
        headers.append(("dispatcher.failed.at", failed_at.encode()))
    body = event(offset) if value is None else value
    if omitted is not None:  # as the writer leaves a letter Kafka refused as too large
        body = None
        headers.append((VALUE_OMITTED, omitted.encode()))
    record = Record("dlq", partition, offset, b"k", body, tuple(headers), 1_000)
    return DeadLetter.from_record(record)


def hooks(*ids: str, disabled: tuple[str, ...] = ()) -> HookIndex:
    return HookIndex(
        Hook.from_dict(
            {"id": i, "events": ["x"], "url": "https://a.example/", "enabled": i not in disabled}
        )
        for i in ids
    )


def test_a_dead_letter_reads_its_failure_from_its_headers() -> None:
    found = letter(7, failed_at="2026-11-29T10:00:00.000Z")
    assert (found.hook_id, found.error_kind, found.idempotency_key) == (
        "tax",
        "http_status",
        "msg_7",
    )
    assert found.failed_at == datetime(2026, 11, 29, 10, tzinfo=UTC).timestamp()
    assert found.where == "dlq/0/7"
    assert found.source == Source("events", 3, 107)


def test_without_failed_at_the_record_timestamp_counts_and_a_broken_source_points_at_the_letter() -> (
    None
):
    record = Record("dlq", 1, 5, None, b"{}", (("dispatcher.source.offset", b"x"),), 1_500)
    found = DeadLetter.from_record(record)
    assert found.failed_at == 1.5
    assert found.source == Source("dlq", 1, 5)
    assert (found.hook_id, found.idempotency_key) == ("", "")


def test_the_replayed_record_keeps_the_letter_and_names_it_in_replay_of() -> None:
    found = letter(9)
    replayed = found.for_replay()
    assert replayed.header(REPLAY_OF) == b"dlq/0/9"
    assert replayed.headers[:-1] == found.record.headers
    assert (replayed.key, replayed.value, replayed.offset) == (b"k", event(9), 9)


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(), [0, 1, 2, 3]),
        (Selection(hook="tax"), [0, 2, 3]),
        (Selection(error_kinds=frozenset({"timeout", "network"})), [1, 2]),
        (Selection(since=datetime(2026, 11, 29, 10, 30, tzinfo=UTC).timestamp()), [2, 3]),
        (Selection(until=datetime(2026, 11, 29, 10, 30, tzinfo=UTC).timestamp()), [0, 1]),
        (Selection(hook="tax", limit=2), [0, 2]),
        (Selection(limit=0), []),
    ],
)
def test_a_selection_takes_letters_matching_every_condition_oldest_first(
    selection: Selection, expected: list[int]
) -> None:
    letters = [
        letter(3, failed_at="2026-11-29T11:30:00Z"),
        letter(0, failed_at="2026-11-29T10:00:00Z"),
        letter(2, kind="timeout", failed_at="2026-11-29T11:00:00Z"),
        letter(1, hook="sms", kind="network", failed_at="2026-11-29T10:15:00Z"),
    ]
    sent = plan(select(letters, selection), set(), hooks("tax", "sms")).send
    assert [d.record.offset for d in sent] == expected


def test_a_time_range_leaves_out_letters_without_a_time() -> None:
    undated = DeadLetter.from_record(Record("dlq", 0, 1, None, b"{}", ()))
    assert list(select([undated], Selection(since=0.0))) == []
    assert list(select([undated], Selection(until=NOW))) == []
    assert list(select([undated], Selection())) == [undated]


def test_the_plan_skips_what_was_delivered_repeated_ids_and_letters_without_a_hook() -> None:
    letters = [
        letter(0),
        letter(1, key="msg_done"),
        letter(2, key="msg_0"),
        letter(3, hook=""),
        letter(4, hook="gone"),
        letter(5, hook="off"),
        letter(6, hook="sms"),
    ]
    result = plan(letters, {"msg_done"}, hooks("tax", "sms", "off", disabled=("off",)))
    assert [d.record.offset for d in result.send] == [0, 6]
    assert [(d.record.offset, why) for d, why in result.skip] == [
        (1, "already delivered"),
        (2, "the same webhook-id is replayed from an earlier letter"),
        (3, "no hook (the record was never a valid event)"),
        (4, "hook gone is not defined"),
        (5, "hook off is disabled"),
    ]
    assert result.selected == 7
    assert reasons(result)["already delivered"] == 1


def test_the_letters_of_a_paused_hook_wait_for_its_resume_which_says_what_sends_each() -> None:
    """`resume --replay` sends the letters since the pause began; one that failed before it
    was said to wait for it too, and following the advice left it unsent."""
    since = parse_iso("2026-11-29T10:00:00.000Z")
    letters = [
        letter(0, failed_at="2026-11-29T10:00:00.000Z"),
        letter(1, hook="sms"),
        letter(2, failed_at="2026-11-29T09:59:59.999Z"),
        letter(3, failed_at=None),
    ]
    result = plan(letters, set(), hooks("tax", "sms"), {"tax": since})
    assert [d.record.offset for d in result.send] == [1]
    assert [(d.record.offset, why) for d, why in result.skip] == [
        (0, "hook tax is paused (hooks resume tax --replay)"),
        (2, "hook tax is paused (failed before the pause: hooks resume tax, then replay)"),
        (3, "hook tax is paused (failed before the pause: hooks resume tax, then replay)"),
    ]


def test_the_letters_of_an_unusable_hook_wait_for_a_definition_that_loads() -> None:
    """Sent now, each would only be dead-lettered as config again, as a new letter."""
    tax = hooks("tax").get("tax")
    assert tax is not None
    unusable = dataclasses.replace(tax, unusable="it does not load here")
    result = plan([letter(0), letter(1, hook="sms")], set(), HookIndex([unusable, *hooks("sms")]))
    assert [d.record.offset for d in result.send] == [1]
    assert reasons(result) == {"hook tax is unusable: it does not load here": 1}


def test_a_letter_written_without_the_events_value_is_skipped_naming_where_the_original_is() -> (
    None
):
    """Nothing to send (never an empty body): the dry run says so, rather than "would send"."""
    found = letter(4, omitted="too large for Kafka: 9000 bytes")
    result = plan([found, letter(5)], set(), hooks("tax"))
    assert [d.record.offset for d in result.send] == [5]
    [(skipped, why)] = result.skip
    assert skipped is found
    assert why.startswith("no event to send: the event's value was left out of this record")
    assert "too large for Kafka: 9000 bytes" in why
    assert why.endswith("the original is at events[3]@104")
    assert result.event_of(found) == ("", "")
    assert result.event_of(result.send[0]) == ("ev-5", "x")


def test_the_plan_reads_letters_with_the_decoder_it_is_given() -> None:
    """A worker reads Avro events too: a replay reads their letters as the worker did."""
    avro = Event.from_dict(json.loads(event(6)))
    found = letter(6, value=encode_event(avro), content_type=EVENT_CONTENT_TYPE)
    assert reasons(plan([found], set(), hooks("tax")))  # read as JSON: not an event
    result = plan([found], set(), hooks("tax"), decode=event_decoder({}))
    assert result.send == (found,)
    assert result.events[found.where].id == "ev-6"


@pytest.mark.parametrize(
    ("edited", "why"),
    [
        ({"events": ["y"]}, "hook tax no longer takes events of type x"),
        ({"tenant": "acme"}, "hook tax now takes only the events of tenant acme"),
        (
            {"filter": [{"path": "data.n", "gt": 100}]},
            "hook tax no longer takes this event: its filter does not admit it",
        ),
    ],
)
def test_an_event_the_hook_as_edited_since_no_longer_takes_is_not_sent(
    edited: dict[str, object], why: str
) -> None:
    """As a worker would not send it: another tenant's event never reaches a tenant's hook."""
    tax = Hook.from_dict({"id": "tax", "events": ["x"], "url": "https://a.example/", **edited})
    result = plan([letter(0), letter(1, hook="sms")], set(), HookIndex([tax, *hooks("sms")]))
    assert [d.record.offset for d in result.send] == [1]
    assert reasons(result) == {why: 1}


def test_an_event_the_hook_still_takes_goes_to_its_definition_of_now() -> None:
    tax = Hook.from_dict(
        {
            "id": "tax",
            "events": ["w", "x*"],
            "tenant": "acme",
            "filter": [{"path": "data.n", "lt": 100}],
            "url": "https://b.example/",
        }
    )
    found = letter(0, value=event(0, tenant="acme"))
    assert plan([found], set(), HookIndex([tax])).send == (found,)


def test_a_second_plan_over_the_first_ones_deliveries_sends_nothing() -> None:
    letters = [letter(i) for i in range(3)]
    first = plan(letters, set(), hooks("tax"))
    second = plan(letters, {d.idempotency_key for d in first.send}, hooks("tax"))
    assert len(first.send) == 3
    assert second.send == ()
    assert reasons(second) == {"already delivered": 3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T10:00:00Z", datetime(2026, 11, 29, 10, tzinfo=UTC).timestamp()),
        ("2026-11-29T13:00:00+03:00", datetime(2026, 11, 29, 10, tzinfo=UTC).timestamp()),
        ("2026-11-29", datetime(2026, 11, 29, tzinfo=UTC).timestamp()),
        ("2h", NOW - 7200),
        ("30m", NOW - 1800),
    ],
)
def test_times_are_iso_8601_or_an_age(text: str, expected: float) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "2026", "h"])
def test_other_times_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_moment(text, NOW)


@pytest.mark.parametrize(
    "text", ["80000000h", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]
)
def test_a_time_outside_the_years_1_to_9999_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        parse_moment(text, NOW)


def test_a_selection_from_command_values() -> None:
    selection = selection_from(
        now=NOW,
        hook="tax",
        since="1h",
        until="2026-11-29T11:59:00Z",
        error_kind="timeout,network",
        limit=5,
    )
    assert selection == Selection(
        hook="tax",
        since=NOW - 3600,
        until=NOW - 60,
        error_kinds=frozenset({"timeout", "network"}),
        limit=5,
    )
    assert selection_from(now=NOW, error_kind=["expired"]).error_kinds == frozenset({"expired"})
    assert selection_from(now=NOW, hook="") == Selection()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"error_kind": "timeout,oops"}, "unknown oops"),
        ({"limit": -1}, "limit"),
        ({"limit": "3"}, "limit"),
        ({"limit": True}, "limit"),
        ({"since": "soon"}, "not a time"),
        # selected nothing, silently: `--since 2h --until 4h` read as "for 4 hours"
        (
            {"since": "2h", "until": "4h"},
            "since 2026-11-29T10:00:00.000Z is after until 2026-11-29T08:00:00.000Z",
        ),
    ],
)
def test_a_selection_refuses_values_it_cannot_use(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        selection_from(now=NOW, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("one", "other", "overlap"),
    [
        (Selection(hook="a"), Selection(hook="a"), True),
        (Selection(hook="a"), Selection(hook="b"), False),
        (Selection(), Selection(hook="b"), True),
        (Selection(hook="a", error_kinds=frozenset({"timeout"})), Selection(hook="a"), True),
        (
            Selection(error_kinds=frozenset({"timeout"})),
            Selection(error_kinds=frozenset({"http_status"})),
            False,
        ),
        (Selection(since=10, until=20), Selection(since=20, until=30), True),
        (Selection(since=10, until=20), Selection(since=21), False),
        (Selection(until=5), Selection(since=6), False),
        (Selection(tenant="acme"), Selection(tenant="globex"), False),
        (Selection(tenant="acme"), Selection(hook="a"), True),
        (Selection(hooks=frozenset({"a", "b"})), Selection(hook="b"), True),
        (Selection(hooks=frozenset({"a", "b"})), Selection(hook="c"), False),
        (Selection(hooks=frozenset({"a"})), Selection(hooks=frozenset({"b"})), False),
        (Selection(hooks=frozenset({"a"})), Selection(hooks=frozenset({"a", "b"})), True),
        (Selection(hooks=frozenset()), Selection(), False),  # selects nothing
    ],
)
def test_two_selections_overlap_when_one_letter_could_be_in_both(
    one: Selection, other: Selection, overlap: bool
) -> None:
    assert one.overlaps(other) is overlap
    assert other.overlaps(one) is overlap


def test_a_tenant_selects_the_letters_of_that_tenants_events() -> None:
    def tenant_letter(offset: int, tenant: str | None) -> DeadLetter:
        base = letter(offset).record
        extra = () if tenant is None else (("dispatcher.tenant", tenant.encode()),)
        return DeadLetter.from_record(
            Record(
                base.topic,
                base.partition,
                base.offset,
                base.key,
                base.value,
                base.headers + extra,
                base.timestamp_ms,
            )
        )

    letters = [tenant_letter(1, "acme"), tenant_letter(2, "globex"), tenant_letter(3, None)]
    chosen = select(letters, selection_from(now=NOW, tenant="acme"))
    assert [found.record.offset for found in chosen] == [1]
    assert len(select(letters, selection_from(now=NOW))) == 3


def test_a_tenant_replay_selects_only_letters_written_for_a_hook_of_that_tenant() -> None:
    """A letter the hook wrote while it served every tenant (or another tenant), or one of a
    version that did not say, is not the tenant's to replay, whatever the hook is now."""

    def written_for(offset: int, hook_tenant: str | None) -> DeadLetter:
        base = letter(offset, hook="audit").record
        extra = [("dispatcher.tenant", b"acme")]
        if hook_tenant is not None:
            extra.append(("dispatcher.hook.tenant", hook_tenant.encode()))
        headers = base.headers + tuple(extra)
        return DeadLetter.from_record(dataclasses.replace(base, headers=headers))

    letters = [written_for(1, "acme"), written_for(2, None), written_for(3, "globex")]
    acmes = selection_from(now=NOW, tenant="acme", hooks=frozenset({"audit"}), hook_tenant="acme")
    assert [found.record.offset for found in select(letters, acmes)] == [1]
    assert len(select(letters, selection_from(now=NOW, tenant="acme"))) == 3  # the operator's


def test_a_set_of_hooks_selects_only_their_letters() -> None:
    letters = [letter(1, hook="tax"), letter(2, hook="crm"), letter(3, hook="sms")]
    chosen = select(letters, Selection(hooks=frozenset({"tax", "sms"})))
    assert [found.hook_id for found in chosen] == ["tax", "sms"]
    assert list(select(letters, Selection(hooks=frozenset()))) == []
    assert list(select(letters, Selection(hook="crm", hooks=frozenset({"tax"})))) == []


def test_a_limit_counts_the_letters_sent_so_a_second_batch_takes_the_next_ones() -> None:
    letters = [letter(i, failed_at=f"2026-11-29T10:0{i}:00Z") for i in range(6)]
    selection = selection_from(now=NOW, hook="tax", limit=2)
    first = plan(select(letters, selection), set(), hooks("tax"))
    assert [d.record.offset for d in first.send] == [0, 1]
    delivered = {d.idempotency_key for d in first.send}
    second = plan(select(letters, selection), delivered, hooks("tax"))
    assert [d.record.offset for d in second.send] == [2, 3]
    assert [(d.record.offset, why) for d, why in second.skip] == [
        (0, "already delivered"),
        (1, "already delivered"),
    ]  # the dry run lists them too, and stops where the batch stops
    assert second.selected == 4


def test_letters_of_a_paused_or_disabled_hook_do_not_use_up_the_limit() -> None:
    letters = [
        letter(0, hook="off", failed_at="2026-11-29T10:00:00Z"),
        letter(1, hook="held", failed_at="2026-11-29T10:01:00Z"),
        letter(2, failed_at="2026-11-29T10:02:00Z"),
        letter(3, failed_at="2026-11-29T10:03:00Z"),
    ]
    known = hooks("tax", "off", "held", disabled=("off",))
    result = plan(select(letters, Selection(limit=1)), set(), known, {"held": 0.0})
    assert [d.record.offset for d in result.send] == [2]
    assert len(result.skip) == 2
    assert plan(select(letters, Selection(limit=0)), set(), known).selected == 0
