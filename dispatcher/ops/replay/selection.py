"""Which dead letters a replay looks at (contract section 6): a selection by hook (or a set of
hooks), tenant, failure time and error kind, with a limit on the letters it sends; read from
command-line or API values, times as ISO 8601 or an age (`2h`). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dispatcher.config.durations import parse_duration
from dispatcher.errors import OUTCOME_ERROR_KINDS
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.moments import iso, parse_iso

EARLIEST = datetime(1, 1, 1, tzinfo=UTC).timestamp()  # the times a `datetime` can hold
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a replay takes: all conditions must hold; `limit` caps how many of
    them are sent (letters skipped as delivered, paused ... do not count)."""

    hook: str | None = None
    since: float | None = None
    until: float | None = None
    error_kinds: frozenset[str] = frozenset()
    limit: int | None = None
    tenant: str | None = None
    hooks: frozenset[str] | None = None  # only letters of these hooks (a tenant token's replay)
    # only letters written for a hook of this tenant, as the hook was then (a tenant token's
    # replay: not a letter of the hook of every tenant or of another tenant its id once named)
    hook_tenant: str | None = None

    def admits(self, letter: DeadLetter) -> bool:
        if self.hook is not None and letter.hook_id != self.hook:
            return False
        if self.hooks is not None and letter.hook_id not in self.hooks:
            return False
        if self.tenant is not None and letter.tenant != self.tenant:
            return False
        if self.hook_tenant is not None and letter.hook_tenant != self.hook_tenant:
            return False
        if self.error_kinds and letter.error_kind not in self.error_kinds:
            return False
        if self.since is not None and (letter.failed_at is None or letter.failed_at < self.since):
            return False
        return not (
            self.until is not None and (letter.failed_at is None or letter.failed_at > self.until)
        )

    def overlaps(self, other: Selection) -> bool:
        """Whether some dead letter could be admitted by both selections."""
        if not self._hooks_meet(other) or not other._hooks_meet(self):
            return False
        if self.tenant is not None and other.tenant is not None and self.tenant != other.tenant:
            return False
        if self.error_kinds and other.error_kinds and not self.error_kinds & other.error_kinds:
            return False
        since = max(self.since or float("-inf"), other.since or float("-inf"))
        until = min(
            float("inf") if self.until is None else self.until,
            float("inf") if other.until is None else other.until,
        )
        return since <= until

    def _hooks_meet(self, other: Selection) -> bool:
        """Whether some hook could be in both selections, as far as `self`'s limits tell."""
        if self.hook is not None and other.hook is not None and self.hook != other.hook:
            return False
        if self.hooks is not None and (
            not self.hooks or (other.hook is not None and other.hook not in self.hooks)
        ):
            return False
        return not (
            self.hooks is not None and other.hooks is not None and not self.hooks & other.hooks
        )


def selection_from(
    *,
    now: float,
    hook: str | None = None,
    since: str | None = None,
    until: str | None = None,
    error_kind: str | list[str] | None = None,
    limit: Any = None,
    tenant: str | None = None,
    hooks: frozenset[str] | None = None,
    hook_tenant: str | None = None,
) -> Selection:
    """A selection from command-line or API values; `ValueError` naming the value at fault."""
    kinds = error_kind.split(",") if isinstance(error_kind, str) else list(error_kind or [])
    kinds = [str(k).strip() for k in kinds if str(k).strip()]
    unknown = sorted(set(kinds) - set(OUTCOME_ERROR_KINDS))
    if unknown:
        known = ", ".join(OUTCOME_ERROR_KINDS)
        raise ValueError(f"error kind: unknown {', '.join(unknown)} (known: {known})")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit: must be a whole number >= 0, not {limit!r}")
    start = None if since is None else parse_moment(since, now)
    end = None if until is None else parse_moment(until, now)
    if start is not None and end is not None and start > end:  # it would select nothing
        raise ValueError(f"since {iso(start)} is after until {iso(end)}: no letter failed between")
    return Selection(
        hook=hook or None,
        since=start,
        until=end,
        error_kinds=frozenset(kinds),
        limit=limit,
        tenant=tenant or None,
        hooks=hooks,
        hook_tenant=hook_tenant or None,
    )


def parse_moment(text: str, now: float) -> float:
    """An epoch time from ISO 8601 (`2026-11-29T10:00:00Z`, `2026-11-29`) or an age (`2h`, `30m`:
    that long before `now`); `ValueError` saying what is accepted. A time outside the years 1 to
    9999 (an age of 80000000h, say) is refused too: no record is that old or new, and it could
    not be written back as a time (a replay shows its selection's times)."""
    moment = parse_iso(text)
    if moment is None:
        moment = _age(text.strip(), now)
    if moment is None:
        raise ValueError(
            f"not a time: {text!r} (use ISO 8601, e.g. 2026-11-29T10:00:00Z, or an age: 2h)"
        )
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"not a time: {text!r} is outside the years 1 to 9999")
    return moment


def _age(text: str, now: float) -> float | None:
    """The time `text` (an age such as `2h`) before `now`; None when it is no age."""
    if not text or not text[-1].isalpha():
        return None
    try:
        return now - parse_duration(text)
    except ValueError:
        return None
