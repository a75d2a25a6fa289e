"""What the index keeps of one record: a result row, a dead-letter row or an attempt row. Pure.

Each keeps `tenant`, the event's, and `hook_tenant`, the hook's as the worker that wrote the
record had it (None: a hook of every tenant, or a record of a version that did not write it):
whose record it is, however the hook changed hands since."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from dispatcher.errors import DecodeError
from dispatcher.kafka.avro.registry import RegistrySchemas
from dispatcher.kafka.results import read_result
from dispatcher.model.attempt import AttemptRecord
from dispatcher.model.deadletter import TRACE_ID, DeadLetter
from dispatcher.model.event import Record
from dispatcher.model.moments import moment
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.intake import Decoder


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One outcome of the results topic."""

    event_id: str
    event_type: str
    hook_id: str
    outcome: str
    attempts: int
    http_status: int | None
    latency_ms: float | None
    error_kind: str | None
    error: str | None
    idempotency_key: str
    completed_at: float
    where: str
    tenant: str | None = None
    trace_id: str | None = None
    hook_tenant: str | None = None

    @classmethod
    def from_record(
        cls, record: Record, registry: RegistrySchemas | None = None
    ) -> ResultRow | None:
        """The row of a result record (a framed Avro one's schema from `registry`), or None
        when the record is not a result."""
        result = read_result(record.value, registry)
        if result is None or not result.get("hook_id"):
            return None
        return cls(
            event_id=str(result.get("event_id") or ""),
            event_type=str(result.get("event_type") or ""),
            hook_id=str(result["hook_id"]),
            outcome=str(result.get("outcome") or ""),
            attempts=int(result.get("attempts") or 0),
            http_status=_int(result.get("http_status")),
            latency_ms=_float(result.get("latency_ms")),
            error_kind=result.get("error_kind"),
            error=result.get("error"),
            idempotency_key=str(result.get("idempotency_key") or ""),
            completed_at=_epoch(result.get("completed_at"), record),
            where=record.where,
            tenant=result.get("tenant") or None,
            trace_id=result.get("trace_id") or None,
            hook_tenant=result.get("hook_tenant") or None,
        )


@dataclass(frozen=True, slots=True)
class LetterRow:
    """One dead letter: where it is, what failed, and the event it carries (when decodable)."""

    where: str
    hook_id: str
    error_kind: str
    error: str
    http_status: int | None
    attempts: int
    idempotency_key: str
    event_id: str
    event_type: str
    failed_at: float
    replayed_from: str
    tenant: str | None = None
    trace_id: str | None = None
    hook_tenant: str | None = None

    @classmethod
    def from_record(cls, record: Record, decode: Decoder = decode) -> LetterRow:
        """The row of a dead letter, its event read with `decode` (where the index follows the
        topics: the workers' decoder, Avro too)."""
        letter = DeadLetter.from_record(record)
        try:
            event = decode(record)
            event_id, event_type = event.id, event.type
        except DecodeError:
            event_id, event_type = "", ""
        return cls(
            where=letter.where,
            hook_id=letter.hook_id,
            error_kind=letter.error_kind,
            error=record.text("dispatcher.error.message"),
            http_status=_int(record.text("dispatcher.http.status")),
            attempts=_int(record.text("dispatcher.attempts")) or 0,
            idempotency_key=letter.idempotency_key,
            event_id=event_id,
            event_type=event_type,
            failed_at=letter.failed_at or 0.0,
            replayed_from=record.text("dispatcher.replayed.from"),
            tenant=letter.tenant,
            trace_id=record.text(TRACE_ID) or None,
            hook_tenant=letter.hook_tenant,
        )


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One HTTP attempt of the attempts topic: an `AttemptRecord`'s fields, with `where` (the
    record's place in the topic) instead of the event's source."""

    event_id: str
    hook_id: str
    attempt: int
    idempotency_key: str
    http_status: int | None
    latency_ms: float
    error_kind: str | None
    error: str | None
    response_excerpt: str | None
    at: float
    where: str
    tenant: str | None = None
    hook_tenant: str | None = None

    @classmethod
    def from_record(cls, record: Record) -> AttemptRow | None:
        """The row of an attempt record, or None when the record is not one."""
        attempt = AttemptRecord.from_json(record.value)
        if attempt is None:
            return None
        kept = {f.name: getattr(attempt, f.name) for f in fields(cls) if f.name != "where"}
        return cls(**kept, where=record.where)


def _epoch(value: Any, record: Record) -> float:
    try:
        return moment(value).timestamp()
    except (ValueError, TypeError):
        return (record.timestamp_ms or 0) / 1000


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
