"""Hook health, cluster-wide: merge the workers' reports on a hook and decide. Pure.

Each worker sees part of a hook's traffic and reports its own last success, first failure
after it and last failure. The cluster's view is their merge: the latest success anyone saw;
failing since the earliest failure after it; the latest failure. A hook is *failing* once its
failures span `failing_after` with no success anywhere in between, and *paused* once they span
`pause_after` (0: never). Spans, not ages: a failure followed by silence (no traffic) never
pauses a hook. A report whose latest attempt is older than the hook's window (its `pause_after`,
else `failing_after`) is stale: a dead worker's view pins a hook in no state. Attempts before the
decision's `floor` (the last resume) are not counted, so a resumed hook starts afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dispatcher.model.health import Decision, Report, State


@dataclass(frozen=True, slots=True)
class Rules:
    """When a hook counts as failing and when it is paused (seconds; 0: never)."""

    failing_after: float
    pause_after: float

    @classmethod
    def for_hook(
        cls, pause_after: float | None, default_pause: float, default_failing: float
    ) -> Rules:
        """A hook's rules: its own `pause_after` or the service's; failing is told after
        `default_failing`, or a quarter of `pause_after` when that is sooner."""
        pause = default_pause if pause_after is None else pause_after
        failing = min(default_failing, pause / 4) if pause > 0 else default_failing
        return cls(failing_after=failing, pause_after=pause)

    @property
    def window(self) -> float:
        """How long a report counts after its latest attempt."""
        return max(self.pause_after, self.failing_after)


@dataclass(frozen=True, slots=True)
class View:
    """The cluster's view of one hook's health."""

    last_success: float | None = None
    failing_since: float | None = None
    last_failure: float | None = None
    last_error: str = ""

    @property
    def failing_for(self) -> float:
        """How long the failures with no success between them span (0 when not failing)."""
        if self.failing_since is None or self.last_failure is None:
            return 0.0
        return self.last_failure - self.failing_since


def merge(reports: Iterable[Report], now: float, window: float, floor: float | None) -> View:
    """The cluster's view from the workers' reports (stale ones and attempts before `floor`
    left out)."""
    oldest = max(now - window if window > 0 else float("-inf"), floor or float("-inf"))
    fresh = [r for r in reports if r.latest >= oldest]
    successes = [r.last_success for r in fresh if r.last_success is not None]
    last_success = max(successes) if successes else None
    after = max(last_success or float("-inf"), floor or float("-inf"))
    starts: list[float] = []
    latest: Report | None = None
    for report in fresh:
        if report.last_failure is None or report.last_failure <= after:
            continue
        start = report.failing_since if report.failing_since is not None else report.last_failure
        # failures before the latest success: only its last failure is known to come after
        starts.append(start if start > after else report.last_failure)
        if latest is None or report.last_failure > (latest.last_failure or 0.0):
            latest = report
    if latest is None:
        return View(last_success=last_success)
    return View(last_success, min(starts), latest.last_failure, latest.last_error)


def decider(reports: Iterable[Report], since: float) -> str | None:
    """The one worker that decides on a hook: of those with an attempt at it since `since`
    (alive and busy with it), the first by id; None when none is. Every worker reading the same
    reports names the same one, so one decision is written, not one per worker; a worker that
    died stops being named once its last attempt is older than `since`."""
    active = [r.worker for r in reports if r.latest >= since]
    return min(active) if active else None


def decide(
    hook_id: str,
    tenant: str | None,
    view: View,
    rules: Rules,
    current: Decision | None,
    now: float,
) -> list[Decision]:
    """The decisions to write, in order (none when the current one stands). Only a resume
    lifts a pause; only a success (anywhere, after the spell began) ends a failing spell: a
    view without fresh reports says nothing."""
    state = current.state if current is not None else "healthy"
    floor = current.floor if current is not None else None
    if state == "paused":
        return []

    def made(new: State, since: float) -> Decision:
        return Decision(hook_id, new, since, now, "auto", view.last_error, tenant, floor)

    ended = current is not None and (view.last_success or float("-inf")) > current.since
    if state == "failing" and ended:  # a success after the spell began ended it
        return [made("healthy", view.last_success or now)]
    if view.failing_since is None or view.last_failure is None:
        return []  # no failure, or no fresh report: nothing to say either way
    # the spell's start, once told, stays the one every worker read: a pause names it too
    since = current.since if state == "failing" and current is not None else view.failing_since
    span = view.last_failure - since
    told = rules.failing_after > 0 and span >= rules.failing_after
    pause = rules.pause_after > 0 and span >= rules.pause_after
    out: list[Decision] = []
    if state != "failing" and (told or pause):
        out.append(made("failing", since))
    if pause:
        out.append(made("paused", since))
    return out
