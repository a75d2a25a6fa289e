"""Hook health as the health topic holds it (contract section 9): one worker's report on a hook,
and the cluster's decision on a hook (failing, paused, resumed, healthy again).

The topic is compacted: a report's key is `<hook id>/<worker id>` (each worker's latest view),
a decision's key is the hook id (the latest decision). Times are epoch seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

State = Literal["healthy", "failing", "paused", "resumed"]
STATES: tuple[State, ...] = ("healthy", "failing", "paused", "resumed")
Reason = Literal["auto", "manual"]


@dataclass(frozen=True, slots=True)
class Report:
    """One worker's own attempts at one hook: its last success, the first failure after it,
    its last failure and that failure's text (masked, as every verdict's)."""

    hook_id: str
    worker: str
    at: float  # when the worker wrote it
    last_success: float | None = None
    failing_since: float | None = None
    last_failure: float | None = None
    last_error: str = ""

    @property
    def key(self) -> str:
        return f"{self.hook_id}/{self.worker}"

    @property
    def latest(self) -> float:
        """The time of the latest attempt this report tells of."""
        return max(self.last_success or 0.0, self.last_failure or 0.0)


@dataclass(frozen=True, slots=True)
class Decision:
    """The cluster's latest decision on a hook. `since`: when the failure began (failing, and
    an automatic pause), when it was paused by hand, or, for `resumed`, the `since` of the pause
    it lifted; `floor`: attempts before it are no longer counted (the last resume)."""

    hook_id: str
    state: State
    since: float
    at: float  # when decided
    reason: Reason = "auto"
    last_error: str = ""
    tenant: str | None = None
    floor: float | None = None

    @property
    def key(self) -> str:
        return self.hook_id


Entry = Report | Decision


def encode(entry: Entry) -> bytes:
    """The record value of a report or a decision."""
    kind = "report" if isinstance(entry, Report) else "decision"
    return json.dumps({"kind": kind, **asdict(entry)}, separators=(",", ":")).encode()


def decode_entry(value: bytes) -> Entry | None:
    """The report or decision a record value holds; None when it holds neither."""
    try:
        raw: Any = json.loads(value)
        kind = raw.pop("kind")
        if kind == "report":
            return Report(**raw)
        if kind == "decision" and raw.get("state") in STATES:
            return Decision(**raw)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return None
