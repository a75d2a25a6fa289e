"""Outcome records: the result record, dead-letter headers and retry-tier headers (contract 5)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from dispatcher.errors import ErrorKind
from dispatcher.model.event import Event, Headers, Record
from dispatcher.model.moments import iso
from dispatcher.model.values import quick_init

OutcomeName = Literal["delivered", "dead_lettered"]
OUTCOMES = get_args(OutcomeName)
TIME_FIELDS = ("first_attempt_at", "completed_at")
RESULT_FIELDS = (  # contract section 5, in order
    "event_id",
    "event_type",
    "hook_id",
    "outcome",
    "attempts",
    "http_status",
    "latency_ms",
    "error_kind",
    "error",
    "captured",
    "idempotency_key",
    "source_topic",
    "source_partition",
    "source_offset",
    "first_attempt_at",
    "completed_at",
)
# written only when there is one; `hook_tenant`: the tenant of the hook as it was when the
# record was written (`tenant` is the event's), so a hook that changes hands keeps its past
OPTIONAL_FIELDS = ("tenant", "trace_id", "hook_tenant")
_KNOWN_FIELDS = frozenset(RESULT_FIELDS + OPTIONAL_FIELDS)
HEADER_PREFIXES = ("dispatcher.", "__connect.")
# on a dead letter or retry-tier record written without the event's value (Kafka refused it as
# too large): what was left out and why; the `dispatcher.source.*` headers say where it is
VALUE_OMITTED = "dispatcher.value.omitted"
MAX_ERROR_CHARS = 1000
TRACE_PARENT = "dispatcher.trace.parent"  # on a retry-tier record: the trace context it continues
TRACE_STATE = "dispatcher.trace.state"
# the hook's tenant, on a dead letter as the hook was when the letter was written; on a retry-tier
# record as it was at the hand-off (so a hook deleted meanwhile still names its tenant)
HOOK_TENANT = "dispatcher.hook.tenant"


def idempotency_key(event: Event, hook_id: str) -> str:
    """The `webhook-id` of (event, hook): the same on every attempt, retry tier and replay."""
    digest = hashlib.sha256(f"{event.source}\x00{event.id}\x00{hook_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


@quick_init
@dataclass(frozen=True, slots=True)
class Source:
    """Where the event first entered: kept through retry tiers so results point at the original."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, record: Record) -> Source:
        """The place of `record` itself."""
        return cls(record.topic, record.partition, record.offset)


@quick_init
@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one (event, hook) pair."""

    event_id: str
    event_type: str
    hook_id: str
    outcome: OutcomeName
    attempts: int
    idempotency_key: str
    source: Source
    first_attempt_at: float
    completed_at: float
    http_status: int | None = None
    latency_ms: float | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    captured: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    trace_id: str | None = None  # 32 lowercase hex digits, when the pair was traced
    hook_tenant: str | None = None  # the hook's tenant when the pair ended (None: every tenant)

    def to_record(self) -> dict[str, Any]:
        """The result record's fields, in contract order (then `tenant`, `trace_id` and
        `hook_tenant`, when there are)."""
        record = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "hook_id": self.hook_id,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "error_kind": self.error_kind,
            "error": self.error,
            "captured": self.captured,
            "idempotency_key": self.idempotency_key,
            "source_topic": self.source.topic,
            "source_partition": self.source.partition,
            "source_offset": self.source.offset,
            "first_attempt_at": iso(self.first_attempt_at),
            "completed_at": iso(self.completed_at),
        }
        if self.tenant is not None:
            record["tenant"] = self.tenant
        if self.trace_id is not None:
            record["trace_id"] = self.trace_id
        if self.hook_tenant is not None:
            record["hook_tenant"] = self.hook_tenant
        return record


def result_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result's fields in contract order, then the optional ones it has (when not null);
    `ValueError` naming missing or unknown ones."""
    missing = [name for name in RESULT_FIELDS if name not in result]
    unknown = sorted(result.keys() - _KNOWN_FIELDS)
    if missing or unknown:
        raise ValueError(f"result fields: missing {missing or 'none'}, unknown {unknown or 'none'}")
    if result["outcome"] not in OUTCOMES:
        raise ValueError(f"result outcome must be one of {OUTCOMES}, not {result['outcome']!r}")
    fields = {name: result[name] for name in RESULT_FIELDS}
    fields.update({n: result[n] for n in OPTIONAL_FIELDS if result.get(n) is not None})
    return fields


def original_headers(record: Record) -> Headers:
    """The record's headers without any the dispatcher added on an earlier pass."""
    headers = record.headers
    for key, _ in headers:
        if key.startswith(HEADER_PREFIXES):
            return tuple((k, v) for k, v in headers if not k.startswith(HEADER_PREFIXES))
    return headers  # e.g. an input record's: nothing of ours to strip


def retry_headers(
    hook_id: str,
    attempts: int,
    first_attempt_at: float,
    due_at: float,
    source: Source,
    idempotency_key: str,
    last_error_kind: str,
    last_error: str,
    traceparent: str | None = None,
    tracestate: str | None = None,
    hook_tenant: str | None = None,
) -> Headers:
    """The `dispatcher.*` headers of a retry-tier record (`RetryState` reads them back); a
    function of plain values, as every hand-off to a tier makes them. `traceparent`: the
    hand-off's span, which the next pass continues (tracing on); `hook_tenant`: the hook's
    tenant, when it has one."""
    headers = (
        ("dispatcher.hook.id", hook_id.encode()),
        *(() if hook_tenant is None else ((HOOK_TENANT, hook_tenant.encode()),)),
        ("dispatcher.attempts", b"%d" % attempts),
        ("dispatcher.first.attempt.at", b"%.3f" % first_attempt_at),
        ("dispatcher.due.at", b"%.3f" % due_at),
        ("dispatcher.source.topic", source.topic.encode()),
        ("dispatcher.source.partition", b"%d" % source.partition),
        ("dispatcher.source.offset", b"%d" % source.offset),
        ("dispatcher.idempotency.key", idempotency_key.encode()),
        ("dispatcher.error.kind", last_error_kind.encode()),
        ("dispatcher.error.message", last_error[:MAX_ERROR_CHARS].encode()),
    )
    if traceparent is None:
        return headers
    if not tracestate:
        return (*headers, (TRACE_PARENT, traceparent.encode()))
    return (*headers, (TRACE_PARENT, traceparent.encode()), (TRACE_STATE, tracestate.encode()))


@dataclass(frozen=True, slots=True)
class RetryState:
    """What a retry-tier record carries about its pair, read back from its headers."""

    hook_id: str
    attempts: int
    first_attempt_at: float
    due_at: float
    source: Source
    idempotency_key: str
    last_error_kind: str = ""
    last_error: str = ""
    traceparent: str | None = None  # the hand-off's span, which the next pass continues
    tracestate: str | None = None
    hook_tenant: str | None = None  # the hook's tenant at the hand-off (None: every tenant)

    def headers(self) -> Headers:
        return retry_headers(
            self.hook_id,
            self.attempts,
            self.first_attempt_at,
            self.due_at,
            self.source,
            self.idempotency_key,
            self.last_error_kind,
            self.last_error,
            self.traceparent,
            self.tracestate,
            self.hook_tenant,
        )

    @classmethod
    def from_record(cls, record: Record) -> RetryState | None:
        """The state in a retry-tier record, or None when its headers are missing or broken."""

        text = record.text
        if not text("dispatcher.hook.id") or not text("dispatcher.idempotency.key"):
            return None
        try:
            return cls(
                hook_id=text("dispatcher.hook.id"),
                attempts=int(text("dispatcher.attempts")),
                first_attempt_at=float(text("dispatcher.first.attempt.at")),
                due_at=float(text("dispatcher.due.at")),
                source=Source(
                    text("dispatcher.source.topic"),
                    int(text("dispatcher.source.partition")),
                    int(text("dispatcher.source.offset")),
                ),
                idempotency_key=text("dispatcher.idempotency.key"),
                last_error_kind=text("dispatcher.error.kind"),
                last_error=text("dispatcher.error.message"),
                traceparent=text(TRACE_PARENT) or None,
                tracestate=text(TRACE_STATE) or None,
                hook_tenant=text(HOOK_TENANT) or None,
            )
        except ValueError:
            return None
