"""A deferred event: an input record that queue mode could not read because the schema
registry was away, handed to the first retry tier to be taken in there once it can be read.

A consumer group holds the partition of such a record, uncommitted, until the registry is back
(engine/outage.py). A share group has no partition of its own to hold, and what it can do to a
record each costs a delivery (`RELEASE`: redelivered at once, up to the group's delivery
limit, then archived unseen) or ends it (`ACCEPT`, `REJECT`). The retry tiers are read by a
consumer group, so a record there waits for the registry as any tier record does.

Its record is the event's (key, value and its own headers) plus `dispatcher.deferred` (this
kind of tier record: no pair yet, since no hook can be matched to an event not read),
`dispatcher.due.at`, `dispatcher.source.topic/partition/offset` (where the event entered: the
results of its pairs point there) and `dispatcher.error.message` (why it was deferred).
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.model.event import Headers, Record
from dispatcher.model.outcome import MAX_ERROR_CHARS, Source, original_headers

DEFERRED = "dispatcher.deferred"  # header of a deferred event's tier record


def deferred_headers(record: Record, due_at: float, why: str) -> Headers:
    """The headers of input `record`'s deferred tier record, due at `due_at`."""
    return (
        *original_headers(record),
        (DEFERRED, b"schema_registry"),
        ("dispatcher.due.at", b"%.3f" % due_at),
        ("dispatcher.source.topic", record.topic.encode()),
        ("dispatcher.source.partition", b"%d" % record.partition),
        ("dispatcher.source.offset", b"%d" % record.offset),
        ("dispatcher.error.message", why[:MAX_ERROR_CHARS].encode()),
    )


def is_deferred(record: Record) -> bool:
    return record.header(DEFERRED) is not None


@dataclass(frozen=True, slots=True)
class Deferral:
    """What a deferred event's tier record says of it: when it is due, where it entered."""

    due_at: float
    source: Source

    @classmethod
    def from_record(cls, record: Record) -> Deferral | None:
        """The deferral of a tier record, or None when its headers are missing or broken."""
        text = record.text
        try:
            source = Source(
                text("dispatcher.source.topic"),
                int(text("dispatcher.source.partition")),
                int(text("dispatcher.source.offset")),
            )
            deferral = cls(float(text("dispatcher.due.at")), source)
        except ValueError:
            return None
        return deferral if source.topic else None
