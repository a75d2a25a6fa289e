"""Pause a hook by hand, resume it (contract section 9): a decision on the health topic, which
every worker follows, and its operational event. Returns values; the CLI and the API show them.

A resume lifts the pause everywhere and sets the hook's health floor to now, so failures from
before it no longer count and the hook does not pause again at once. Its replay selection is
every dead letter of the hook since the pause's `since` (when the failures began, for a pause
the workers decided; when it was paused, for one by hand).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError
from dispatcher.kafka.health import HealthWriter, read_decisions
from dispatcher.model.health import Decision
from dispatcher.model.hook import Hook
from dispatcher.ops.replay.selection import Selection
from dispatcher.pipeline.match import HookIndex

SETTLE_SECONDS = 1.0  # workers read a decision within their follower's poll (0.2 s)


@dataclass(frozen=True, slots=True)
class Change:
    """A pause or resume: the decision in force after it, and whether this call made it."""

    decision: Decision
    changed: bool
    lifted: Decision | None = None  # a resume: the pause it lifted

    @property
    def replay(self) -> Selection:
        """What `resume --replay` re-delivers: the hook's dead letters since the pause began."""
        since = self.lifted.since if self.lifted is not None else self.decision.since
        return Selection(hook=self.decision.hook_id, since=since)


class Decisions(Protocol):
    """Where the decisions on hooks are read and written."""

    def get(self, hook_id: str) -> Decision | None: ...

    def write(self, decision: Decision) -> None: ...


class TopicDecisions:
    """The decisions on the health topic: read as they stand, written acknowledged."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def get(self, hook_id: str) -> Decision | None:
        return read_decisions(self.settings).get(hook_id)

    def write(self, decision: Decision) -> None:
        writer = HealthWriter(self.settings)
        writer.decide(decision)
        writer.flush()


def pause_hook(
    decisions: Decisions, hooks: HookIndex, hook_id: str, now: float | None = None
) -> Change:
    """Pause `hook_id` by hand, since now; a hook already paused stays as it is."""
    hook = _known(hooks, hook_id)
    current = decisions.get(hook_id)
    if current is not None and current.state == "paused":
        return Change(current, changed=False)
    moment = time.time() if now is None else now
    decision = Decision(
        hook_id,
        "paused",
        since=moment,
        at=moment,
        reason="manual",
        last_error=current.last_error if current is not None else "",
        tenant=hook.tenant,
        floor=current.floor if current is not None else None,
    )
    decisions.write(decision)
    return Change(decision, changed=True)


def resume_hook(
    decisions: Decisions,
    hooks: HookIndex,
    hook_id: str,
    now: float | None = None,
    settle: float = 0.0,
) -> Change:
    """Lift the pause of `hook_id`; `ConfigError` when it is not paused. `settle`: seconds to
    let the workers read the resume before returning (before a replay scans the dead letters,
    so that none is dead-lettered as paused after the scan)."""
    hook = _known(hooks, hook_id)
    current = decisions.get(hook_id)
    if current is None or current.state != "paused":
        raise ConfigError(f"hook {hook_id!r} is not paused")
    moment = time.time() if now is None else now
    decision = Decision(
        hook_id,
        "resumed",
        since=current.since,  # the pause lifted: one resume per pause, one event id
        at=moment,
        reason="manual",
        last_error=current.last_error,
        tenant=hook.tenant,
        floor=moment,
    )
    decisions.write(decision)
    if settle > 0:
        time.sleep(settle)
    return Change(decision, changed=True, lifted=current)


def _known(hooks: HookIndex, hook_id: str) -> Hook:
    hook = hooks.get(hook_id)
    if hook is None:
        raise ConfigError(f"no hook {hook_id!r}")
    return hook
