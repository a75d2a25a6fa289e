"""Judge one HTTP exchange: success, a retryable failure or a permanent one. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from dispatcher.errors import ErrorKind
from dispatcher.model.response import ResponseSpec
from dispatcher.model.values import quick_init
from dispatcher.pipeline.excerpt import EXCERPT_BYTES
from dispatcher.pipeline.expect import check_body

RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_RETRY_AFTER = 3600.0


@quick_init
@dataclass(frozen=True, slots=True)
class Verdict:
    """What one attempt came to. `kind` is None on success. `head` is the start of the
    response body (at most `EXCERPT_BYTES`, for the attempts topic), empty without one."""

    ok: bool
    kind: ErrorKind | None = None
    retryable: bool = False
    error: str | None = None
    status: int | None = None
    captured: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None
    head: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def failure(
        cls, kind: ErrorKind, error: str, *, retryable: bool, status: int | None = None
    ) -> Verdict:
        return cls(ok=False, kind=kind, retryable=retryable, error=error, status=status)


def judge(
    spec: ResponseSpec, status: int, headers: Mapping[str, str], body: bytes, *, now: float = 0.0
) -> Verdict:
    """The verdict on a response: status first, then the body's `expect` checks."""
    head = body[:EXCERPT_BYTES]  # a small slice (the whole body itself when it is short)
    if not spec.is_success_status(status):
        retryable = retryable_status(status)
        reason = "redirects are not followed" if 300 <= status < 400 else "unexpected status"
        return Verdict(
            ok=False,
            kind="http_status",
            retryable=retryable,
            error=f"HTTP {status}: {reason}",
            status=status,
            retry_after=retry_after(headers.get("retry-after"), now) if retryable else None,
            head=head,
        )
    failures, captured = check_body(spec, body, headers.get("content-type", ""))
    if failures:
        # The third party took the request (an accepted status) and answered no: sending it
        # again would repeat what it already refused, or processed (CONTRACT section 4).
        return Verdict(
            ok=False,
            kind="response_invalid",
            retryable=False,
            error="; ".join(failures),
            status=status,
            captured=captured,
            head=head,
        )
    return Verdict(ok=True, status=status, captured=captured, head=head)


def retryable_status(status: int) -> bool:
    """Whether a status that is no success may pass if asked again: 408, 425, 429 and 5xx."""
    return status in RETRYABLE_STATUS or status >= 500


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit alone admits "\xb9", which float refuses
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            # an HTTP date is always UTC (RFC 9110 5.6.7), but its asctime form names no zone
            # (nor does "-0000"): never read as the worker's local time
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
