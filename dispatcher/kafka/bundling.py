"""How the outcome writer packs pairs held back by an open circuit into tier bundles
(model/bundle.py): which pairs may share one, its parts cut under BUNDLE_BYTES, each part's
bundle record, and each pair's own tier record for a bundle Kafka refuses as too large.

It builds records and acknowledgement callbacks only; the writer (kafka/writer.py) produces
them, on the delivery loop (hand-offs) or on the consumer thread (pairs held at intake).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from dispatcher.kafka.outgoing import OutgoingRecord
from dispatcher.kafka.producing import Done
from dispatcher.model.bundle import bundle_entry, bundle_record
from dispatcher.model.event import Record
from dispatcher.model.outcome import Source, original_headers, retry_headers
from dispatcher.pipeline.retry import Handoff

Item = TypeVar("Item")
BUNDLE_BYTES = 256 * 1024  # a tier bundle's value at most: records may have 1 MB by default
# what the hand-offs of one bundle share: hook, tier, last error (kind, text), consumed partition
Group = tuple[str, int, str, str, str, int]


def handoff_groups(handoffs: list[tuple[Handoff, Done]]) -> dict[Group, list[tuple[Handoff, Done]]]:
    """The hand-offs that may share a bundle: those of one hook, tier, last error and consumed
    partition (a partition's revoke drops what is unsent of it, and no other's)."""
    groups: dict[Group, list[tuple[Handoff, Done]]] = {}
    for handoff, done in handoffs:
        last, record = handoff.last, handoff.pair.record
        key = (
            handoff.pair.hook.id,
            handoff.tier,
            last.kind or "",
            last.error or "",
            record.topic,
            record.partition,
        )
        groups.setdefault(key, []).append((handoff, done))
    return groups


def handoff_bundle(
    part: list[tuple[Handoff, Done]], topic: str, hook_id: str, kind: str, error: str
) -> OutgoingRecord:
    """The bundle record of hand-offs of one group, to the tier `topic`."""
    entries = [
        bundle_entry(
            handoff.pair.record,
            original_headers(handoff.pair.record),
            handoff.attempts,
            handoff.first_attempt_at,
            handoff.pair.source,
            handoff.pair.idempotency_key,
            handoff.traceparent,
            handoff.tracestate,
        )
        for handoff, _ in part
    ]
    due_at = max(handoff.due_at for handoff, _ in part)
    tenant = part[0][0].pair.hook.tenant
    headers, value = bundle_record(entries, hook_id, due_at, kind, error, tenant)
    return OutgoingRecord(topic, None, value, headers)


@dataclass(frozen=True, slots=True)
class Holding:
    """What the pairs of one hook held back at intake (its circuit open, no attempt yet) share:
    the first tier `topic` they go to, their hook (of `hook_tenant`), when they are due, the
    error they carry (`last`: kind, text) and `now`, their first attempt's time."""

    topic: str
    hook_id: str
    due_at: float
    last: tuple[str, str]
    now: float
    hook_tenant: str | None = None


def held_bundle(part: list[tuple[Record, str]], holding: Holding) -> OutgoingRecord:
    """The bundle record of pairs held back at intake, each an input record and the pair's
    idempotency key."""
    kind, error = holding.last
    entries = [
        bundle_entry(
            record,
            original_headers(record),
            0,
            holding.now,
            Source.of(record),
            key,
        )
        for record, key in part
    ]
    headers, value = bundle_record(
        entries, holding.hook_id, holding.due_at, kind, error, holding.hook_tenant
    )
    return OutgoingRecord(holding.topic, None, value, headers)


def held_singles(
    part: list[tuple[Record, str]], holding: Holding, finish: Callable[[Record], None]
) -> list[tuple[OutgoingRecord, Done]]:
    """The tier records of pairs held at intake, each of its own (their bundle too large);
    `finish(record)` runs once its record is acknowledged."""
    kind, error = holding.last
    singles: list[tuple[OutgoingRecord, Done]] = []
    for record, key in part:
        source = Source.of(record)
        headers = retry_headers(
            holding.hook_id,
            0,
            holding.now,
            holding.due_at,
            source,
            key,
            kind,
            error,
            hook_tenant=holding.hook_tenant,
        )
        headers = original_headers(record) + headers
        outgoing = OutgoingRecord(holding.topic, record.key, record.value, headers)
        singles.append((outgoing, functools.partial(finish, record)))
    return singles


def run_all(dones: list[Done]) -> Done:
    """A callback that runs every one of `dones` (a bundle's pairs, acknowledged together)."""

    def acked() -> None:
        for done in dones:
            done()

    return acked


def finish_all(records: list[Record], finish: Callable[[Record], None]) -> Done:
    """A callback that runs `finish` for every one of `records` (a bundle held at intake)."""

    def acked() -> None:
        for record in records:
            finish(record)

    return acked


def handoff_record(item: tuple[Handoff, Done]) -> Record:
    return item[0].pair.record


def held_record(item: tuple[Record, str]) -> Record:
    return item[0]


def bundle_parts(group: list[Item], record_of: Callable[[Item], Record]) -> list[list[Item]]:
    """`group` in parts whose bundle stays under BUNDLE_BYTES (an event near that size alone)."""
    parts: list[list[Item]] = [[]]
    size = 0
    for item in group:
        record = record_of(item)
        # base64 of the key, value and headers, and a few hundred bytes of state
        grows = (len(record.key or b"") + len(record.value or b"")) * 4 // 3 + 400
        if record.headers:
            grows += sum(
                len(name) + len(value or b"") * 4 // 3 + 8 for name, value in record.headers
            )
        if parts[-1] and size + grows > BUNDLE_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += grows
    return parts
