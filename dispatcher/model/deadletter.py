"""Dead letters (contract section 5): the headers written on one, and read back from one.

Writer and reader stand together so the two can never drift: a replay reads exactly what a
worker wrote, and a replayed letter that fails again carries `dispatcher.replayed.from`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.model.event import Headers, Record
from dispatcher.model.moments import iso, parse_iso
from dispatcher.model.outcome import (
    HOOK_TENANT,  # the hook's tenant when the letter was written
    MAX_ERROR_CHARS,
    Outcome,
    Source,
    original_headers,
)

REPLAY_OF = "dispatcher.replay.of"
REPLAYED_FROM = "dispatcher.replayed.from"
TENANT = "dispatcher.tenant"
TRACE_ID = "dispatcher.trace.id"


def dead_letter_headers(outcome: Outcome, record: Record, *, failed_at: float) -> Headers:
    """The original headers plus the contract's dead-letter and Kafka Connect headers."""
    message = (outcome.error or "")[:MAX_ERROR_CHARS]
    kind = outcome.error_kind or "unknown"
    ours = {
        "dispatcher.hook.id": outcome.hook_id,
        "dispatcher.error.kind": kind,
        "dispatcher.error.message": message,
        "dispatcher.http.status": "" if outcome.http_status is None else str(outcome.http_status),
        "dispatcher.attempts": str(outcome.attempts),
        "dispatcher.idempotency.key": outcome.idempotency_key,
        "dispatcher.source.topic": outcome.source.topic,
        "dispatcher.source.partition": str(outcome.source.partition),
        "dispatcher.source.offset": str(outcome.source.offset),
        "dispatcher.failed.at": iso(failed_at),
        "__connect.errors.topic": outcome.source.topic,
        "__connect.errors.partition": str(outcome.source.partition),
        "__connect.errors.offset": str(outcome.source.offset),
        "__connect.errors.exception.class.name": f"dugaa.dispatcher.{kind}",
        "__connect.errors.exception.message": message,
    }
    if outcome.tenant is not None:
        ours[TENANT] = outcome.tenant
    if outcome.trace_id is not None:
        ours[TRACE_ID] = outcome.trace_id
    if outcome.hook_tenant is not None:
        ours[HOOK_TENANT] = outcome.hook_tenant
    replayed = record.header(REPLAY_OF)
    extra = ((REPLAYED_FROM, replayed),) if replayed else ()
    return original_headers(record) + tuple((k, v.encode()) for k, v in ours.items()) + extra


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic and what its headers say about the failure.
    `tenant` is the event's; `hook_tenant` the hook's when the letter was written (None: a
    hook of every tenant, or a letter of a version that did not write it)."""

    record: Record
    hook_id: str
    error_kind: str
    idempotency_key: str
    failed_at: float | None
    tenant: str | None = None
    hook_tenant: str | None = None

    @classmethod
    def from_record(cls, record: Record) -> DeadLetter:
        failed = parse_iso(record.text("dispatcher.failed.at"))
        if failed is None and record.timestamp_ms is not None:
            failed = record.timestamp_ms / 1000
        return cls(
            record=record,
            hook_id=record.text("dispatcher.hook.id"),
            error_kind=record.text("dispatcher.error.kind"),
            idempotency_key=record.text("dispatcher.idempotency.key"),
            failed_at=failed,
            tenant=record.text(TENANT) or record.text("ce_tenant") or None,
            hook_tenant=record.text(HOOK_TENANT) or None,
        )

    @property
    def where(self) -> str:
        """`topic/partition/offset`: the letter's place, carried by a replay as `replay.of`."""
        return self.record.where

    @property
    def source(self) -> Source:
        """Where the event first entered, as the letter records it."""
        try:
            return Source(
                self.record.text("dispatcher.source.topic"),
                int(self.record.text("dispatcher.source.partition")),
                int(self.record.text("dispatcher.source.offset")),
            )
        except ValueError:
            return Source(self.record.topic, self.record.partition, self.record.offset)

    def for_replay(self) -> Record:
        """The record a replay delivers: the letter, marked with `dispatcher.replay.of`, so that a
        failure is dead-lettered anew with `dispatcher.replayed.from`."""
        headers = (*self.record.headers, (REPLAY_OF, self.where.encode()))
        return Record(
            self.record.topic,
            self.record.partition,
            self.record.offset,
            self.record.key,
            self.record.value,
            headers,
            self.record.timestamp_ms,
        )
