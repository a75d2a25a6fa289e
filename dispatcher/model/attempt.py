"""One HTTP attempt as the attempts topic holds it (contract section 9), and its JSON form.

Observability, not delivery: a record of every attempt made, with what the third party
answered (an excerpt of its body, text only). It never holds a secret, a request body or a
URL: the error text is a verdict's (masked where it is made), the excerpt masked by its writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dispatcher.model.moments import iso, moment
from dispatcher.model.outcome import Source
from dispatcher.model.values import quick_init

FIELDS = (
    "event_id",
    "hook_id",
    "attempt",
    "idempotency_key",
    "http_status",
    "latency_ms",
    "error_kind",
    "error",
    "response_excerpt",
    "at",
    "tenant",
    "hook_tenant",
    "source_topic",
    "source_partition",
    "source_offset",
)


@quick_init
@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of one (event, hook) pair: `attempt` counts from 1 over every attempt of the
    pair (retry tiers and their local retries included); `at` is when it was sent (epoch s).
    `tenant` is the event's, `hook_tenant` the hook's as it was when the attempt was made
    (None: a hook of every tenant), which is whose record it is."""

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
    tenant: str | None = None
    source: Source | None = None
    hook_tenant: str | None = None

    def to_json(self) -> bytes:
        """The record's value: a compact JSON object, fields in contract order, `at` ISO 8601."""
        source = self.source
        return orjson.dumps(
            {
                "event_id": self.event_id,
                "hook_id": self.hook_id,
                "attempt": self.attempt,
                "idempotency_key": self.idempotency_key,
                "http_status": self.http_status,
                "latency_ms": round(self.latency_ms, 3),
                "error_kind": self.error_kind,
                "error": self.error,
                "response_excerpt": self.response_excerpt,
                "at": iso(self.at),
                "tenant": self.tenant,
                "hook_tenant": self.hook_tenant,
                "source_topic": None if source is None else source.topic,
                "source_partition": None if source is None else source.partition,
                "source_offset": None if source is None else source.offset,
            }
        )

    @classmethod
    def from_json(cls, value: bytes | None) -> AttemptRecord | None:
        """The record a value holds, or None when it is not one (a reader skips it)."""
        try:
            document = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            return None
        if not isinstance(document, Mapping):
            return None
        try:
            return cls._from(document)
        except (KeyError, TypeError, ValueError, OverflowError):
            return None

    @classmethod
    def _from(cls, doc: Mapping[str, Any]) -> AttemptRecord:
        topic, partition, offset = (
            doc.get(f"source_{n}") for n in ("topic", "partition", "offset")
        )
        source = None
        if topic is not None and partition is not None and offset is not None:
            source = Source(str(topic), int(partition), int(offset))
        status = doc.get("http_status")
        return cls(
            event_id=_text(doc["event_id"]),
            hook_id=_text(doc["hook_id"]),
            attempt=int(doc["attempt"]),
            idempotency_key=_text(doc.get("idempotency_key") or ""),
            http_status=None if status is None else int(status),
            latency_ms=float(doc.get("latency_ms") or 0.0),
            error_kind=_optional(doc.get("error_kind")),
            error=_optional(doc.get("error")),
            response_excerpt=_optional(doc.get("response_excerpt")),
            at=moment(_text(doc["at"])).timestamp(),
            tenant=_optional(doc.get("tenant")),
            source=source,
            hook_tenant=_optional(doc.get("hook_tenant")),
        )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a text: {value!r}")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)
