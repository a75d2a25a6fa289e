"""Tier bundles: many held-back pairs of one hook in one retry-tier record, read back exactly."""

from __future__ import annotations

import orjson
import pytest

from dispatcher.model.bundle import BUNDLE, bundle_entry, bundle_record, is_bundle, unbundle
from dispatcher.model.event import Record
from dispatcher.model.outcome import RetryState, Source

AVRO = b"\x00\x00\x00\x00\x07\x02\xff\xfe binary"  # any bytes ride along unchanged
EVENTS = [
    Record("dugaa.events", 1, 10, b"k1", b'{"id":"e1"}', (("content-type", b"application/json"),)),
    Record("dugaa.events", 2, 20, None, AVRO, ()),
    Record(
        "dugaa.events",
        3,
        30,
        b"",
        None,
        (("x-empty", b""), ("x-bin", b"\xff\x00"), ("x-null", None)),  # null stays null
    ),
]


def bundled(events: list[Record] = EVENTS, traced: bool = False) -> Record:
    entries = [
        bundle_entry(
            event,
            event.headers,
            n,
            1_800_000_000.25 + n,
            Source(event.topic, event.partition, event.offset),
            f"msg_{n}",
            f"00-{n:032x}-{n:016x}-01" if traced else None,
            "vendor=1" if traced else None,
        )
        for n, event in enumerate(events)
    ]
    headers, value = bundle_record(entries, "crm", 1_800_000_600.5, "network", "breaker open")
    return Record("dugaa.dispatch.retry.10m", 4, 77, None, value, headers, 1_800_000_000_000)


@pytest.mark.parametrize("traced", [False, True])
def test_every_event_and_its_state_read_back_exactly_at_the_bundles_place(traced: bool) -> None:
    carried = unbundle(bundled(traced=traced))

    assert carried is not None
    assert len(carried) == len(EVENTS)
    for n, (record, state) in enumerate(carried):
        event = EVENTS[n]
        assert (record.key, record.value, record.headers) == (event.key, event.value, event.headers)
        assert (record.topic, record.partition, record.offset) == (
            "dugaa.dispatch.retry.10m",
            4,
            77,
        )
        assert record.timestamp_ms == 1_800_000_000_000
        assert state == RetryState(
            "crm",
            n,
            1_800_000_000.25 + n,
            1_800_000_600.5,
            Source(event.topic, event.partition, event.offset),
            f"msg_{n}",
            "network",
            "breaker open",
            f"00-{n:032x}-{n:016x}-01" if traced else None,
            "vendor=1" if traced else None,
        )


def test_a_bundle_is_known_by_its_header_and_is_json_a_reader_can_inspect() -> None:
    rec = bundled()

    assert is_bundle(rec)
    assert not is_bundle(EVENTS[0])
    assert rec.text(BUNDLE) == "3"
    assert [e["idempotency_key"] for e in orjson.loads(rec.value or b"")] == [
        "msg_0",
        "msg_1",
        "msg_2",
    ]


def test_an_empty_bundle_holds_no_pairs() -> None:
    assert unbundle(bundled([])) == []


def broken(value: bytes | None = None, **headers: bytes) -> Record:
    rec = bundled()
    names = {"count": BUNDLE, "hook": "dispatcher.hook.id", "due": "dispatcher.due.at"}
    changed = {names[k]: v for k, v in headers.items()}
    new_headers = tuple((k, changed.get(k, v)) for k, v in rec.headers)
    return Record(rec.topic, rec.partition, rec.offset, None, value or rec.value, new_headers)


def entries_with(**change: object) -> bytes:
    entries = orjson.loads(bundled().value or b"")
    entries[1].update(change)
    return orjson.dumps(entries)


@pytest.mark.parametrize(
    "rec",
    [
        broken(b"not json"),
        broken(b'{"an": "object"}'),
        broken(b"[1, 2, 3]"),
        broken(count=b"2"),
        broken(count=b"three"),
        broken(hook=b""),
        broken(due=b"soon"),
        broken(entries_with(value="not base64!")),
        broken(entries_with(value=7)),
        broken(entries_with(idempotency_key="")),
        broken(entries_with(attempts="many")),
        broken(entries_with(headers=[["only a name"]])),
        broken(entries_with(source_offset=None)),
    ],
)
def test_a_broken_bundle_reads_as_none(rec: Record) -> None:
    assert unbundle(rec) is None


def test_every_pair_of_a_bundle_carries_the_tenant_of_its_hook() -> None:
    entries = [bundle_entry(EVENTS[0], (), 1, 1.0, Source("e", 0, 0), "msg_0")]
    headers, value = bundle_record(entries, "crm", 2.0, "network", "x", hook_tenant="acme")

    carried = unbundle(Record("dugaa.dispatch.retry.10m", 0, 1, None, value, headers))

    assert carried is not None
    assert [state.hook_tenant for _record, state in carried] == ["acme"]
    assert [s.hook_tenant for _r, s in unbundle(bundled()) or []] == [None, None, None]
