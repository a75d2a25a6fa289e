"""A tier bundle: the pairs of one hook held back together, in one retry-tier record.

While a hook's circuit is open, every event bound for it is handed to a retry tier without a
request. One tier record per pair made a dead hook cost the hook beside it 11-16% of its
throughput (s3 of the benchmark: each record is produced, compressed, written by the broker and
acknowledged one by one); the pairs of one hook, tier and last error held back together share
one record instead: those of one consumed batch of new events (the consumer thread holds them
back as it takes them in) or of one turn of the delivery loop.

The record's headers say what the pairs share: `dispatcher.bundle` (how many it holds),
`dispatcher.hook.id` (and `dispatcher.hook.tenant`, when the hook has one), `dispatcher.due.at`
and the last error. Its value is a JSON array, one
object per pair with what a single tier record carries: the event's record (`key`, `value`,
`headers`; bytes in base64, so any event, JSON or Avro, rides along unchanged) and the pair's
state (`attempts`, `first_attempt_at`, `source_*`, `idempotency_key`, `traceparent`,
`tracestate`). `jq` reads a bundle's value as it is.
"""

from __future__ import annotations

from binascii import Error as Base64Error
from binascii import a2b_base64, b2a_base64
from typing import Any

import orjson

from dispatcher.model.event import Headers, Record
from dispatcher.model.outcome import HOOK_TENANT, MAX_ERROR_CHARS, RetryState, Source

BUNDLE = "dispatcher.bundle"  # header of a bundle record: the number of pairs in it
Entry = dict[str, Any]


def bundle_entry(
    record: Record,
    headers: Headers,
    attempts: int,
    first_attempt_at: float,
    source: Source,
    idempotency_key: str,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> Entry:
    """One pair of a bundle: its event's record (with `headers`, the record's own without any
    the dispatcher added) and its state."""
    return {
        "key": _text(record.key),
        "value": _text(record.value),
        "headers": [[name, _text(value)] for name, value in headers] if headers else [],
        "attempts": attempts,
        "first_attempt_at": first_attempt_at,
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
        "idempotency_key": idempotency_key,
        "traceparent": traceparent,
        "tracestate": tracestate,
    }


def bundle_record(
    entries: list[Entry],
    hook_id: str,
    due_at: float,
    error_kind: str,
    error: str,
    hook_tenant: str | None = None,
) -> tuple[Headers, bytes]:
    """The headers and value of the bundle of `entries`, all due at `due_at`, for `hook_id`
    (of `hook_tenant`, when it has one)."""
    headers = (
        (BUNDLE, b"%d" % len(entries)),
        ("dispatcher.hook.id", hook_id.encode()),
        *(() if hook_tenant is None else ((HOOK_TENANT, hook_tenant.encode()),)),
        ("dispatcher.due.at", b"%.3f" % due_at),
        ("dispatcher.error.kind", error_kind.encode()),
        ("dispatcher.error.message", error[:MAX_ERROR_CHARS].encode()),
    )
    return headers, orjson.dumps(entries)


def is_bundle(record: Record) -> bool:
    return record.header(BUNDLE) is not None


def unbundle(record: Record) -> list[tuple[Record, RetryState]] | None:
    """The pairs of a bundle record: each event's record (where the bundle is: its topic,
    partition and offset are the bundle's) and the pair's state; None when it is broken."""
    text = record.text
    shared = (
        text("dispatcher.hook.id"),
        text("dispatcher.error.kind"),
        text("dispatcher.error.message"),
        text(HOOK_TENANT) or None,
    )
    try:
        due_at = float(text("dispatcher.due.at"))
        entries = orjson.loads(record.value or b"")
        if not shared[0] or not isinstance(entries, list) or len(entries) != int(text(BUNDLE)):
            return None
        return [_pair_of(record, entry, due_at, *shared) for entry in entries]
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, Base64Error):
        return None


def _pair_of(
    bundle: Record,
    entry: Entry,
    due_at: float,
    hook_id: str,
    error_kind: str,
    error: str,
    hook_tenant: str | None,
) -> tuple[Record, RetryState]:
    record = Record(
        bundle.topic,
        bundle.partition,
        bundle.offset,
        _bytes(entry["key"]),
        _bytes(entry["value"]),
        tuple((str(name), _bytes(value)) for name, value in entry["headers"]),
        bundle.timestamp_ms,
    )
    idempotency_key = entry["idempotency_key"]
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise ValueError("a bundled pair without an idempotency key")
    state = RetryState(
        hook_id=hook_id,
        attempts=int(entry["attempts"]),
        first_attempt_at=float(entry["first_attempt_at"]),
        due_at=due_at,
        source=Source(
            str(entry["source_topic"]), int(entry["source_partition"]), int(entry["source_offset"])
        ),
        idempotency_key=idempotency_key,
        last_error_kind=error_kind,
        last_error=error,
        traceparent=_optional_text(entry.get("traceparent")),
        tracestate=_optional_text(entry.get("tracestate")),
        hook_tenant=hook_tenant,
    )
    return record, state


def _text(value: bytes | None) -> str | None:
    return None if value is None else b2a_base64(value, newline=False).decode("ascii")


def _bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("bundled bytes are base64 text")
    return a2b_base64(value, strict_mode=True)


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
