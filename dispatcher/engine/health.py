"""A worker's part in hook health (contract section 9).

It counts its own HTTP attempts per hook (an `AttemptObserver`; pairs that came from the
operations topic do not count, so a hook that notifies of hooks' health never pauses because
of its own notices), reports what changed every `hook_health_interval` to the health topic,
merges every worker's reports from that topic, decides (`dispatcher.pipeline.health`), writes
the decision and its operational event, and holds back the pairs of paused hooks (`held`). A
decision applies once the health topic has it (its delivery report, or read back), never before:
one that was not written is decided and written again, so no worker holds a pause alone.
One worker decides on a hook (`decider`: the first by id of those attempting it lately); should
two decide at once (one has not read the other's report yet), both write the same decision and
the same event id: a decision names its `since`, and writing it twice changes nothing.
Its producer failed for good (a librdkafka fatal error), nothing of hook health can be written
any more, and no hook would ever pause: it says so as the intake loops do, and ends its `run`,
which stops the worker (it exits 3), as a failed outcome producer does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace

from dispatcher.config.settings import Settings
from dispatcher.engine.wiring import say_producer_failed
from dispatcher.http.sender import Attempt
from dispatcher.kafka.health import HealthFollower, HealthWriter
from dispatcher.metrics import Metrics
from dispatcher.model.health import Decision, Report
from dispatcher.model.moments import iso
from dispatcher.model.pair import Pair
from dispatcher.pipeline.health import Rules, decide, decider, merge
from dispatcher.pipeline.match import HookIndex

log = logging.getLogger(__name__)
ACTIVE_ROUNDS = 3  # a worker that attempted a hook within this many rounds may decide on it
WITHDRAW_SECONDS = 5.0  # a stopping worker waits this long for its reports' withdrawal


@dataclass(slots=True)
class _Mine:
    """This worker's own attempts at one hook."""

    last_success: float | None = None
    failing_since: float | None = None
    last_failure: float | None = None
    last_error: str = ""


class HealthKeeper:
    """Hook health as one worker keeps it; `observe` and `held` run on the delivery loop.
    `fatal` names the error its producer failed for good of, which ended its `run` (above)."""

    def __init__(
        self,
        settings: Settings,
        hooks: Callable[[], HookIndex],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.hooks = hooks
        self.metrics = metrics
        self.clock = clock
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.exempt = {settings.topics.operations} - {""}
        self.follower = HealthFollower(settings, self._on_decision)
        self.writer: HealthWriter | None = None
        self.fatal: str | None = None
        self._mine: dict[str, _Mine] = {}
        self._changed: set[str] = set()
        self._decisions: dict[str, Decision] = {}
        self._writing: dict[str, int] = {}  # hook id -> its decisions written, not yet answered
        self._paused: dict[str, str] = {}  # hook id -> why its pairs are held
        self._shown: dict[str, tuple[bool, bool]] = {}  # the gauges exported: (paused, failing)

    def start(self) -> None:
        """Read the health topic to its end (pauses in force apply to the first event), then
        follow it. Blocking: call it before consuming."""
        self.writer = HealthWriter(self.settings)
        self.follower.start()
        self._export(self.hooks())

    def stop(self, by: float | None = None) -> None:
        """Withdraw this worker's reports (a stopped worker's view must not linger), stop;
        waiting `WITHDRAW_SECONDS` at most, and not past `by` (a `time.monotonic()` deadline:
        the worker's stop deadline). A producer that failed for good writes nothing: the
        reports go stale instead."""
        if self.writer is not None and self.writer.fatal is None:
            for hook_id in self._mine:
                self.writer.forget(f"{hook_id}/{self.worker}")
            wait = WITHDRAW_SECONDS if by is None else min(WITHDRAW_SECONDS, by - time.monotonic())
            with suppress(Exception):  # best effort: a report left behind goes stale
                self.writer.flush(max(wait, 0.0))
        self.follower.stop(by)

    # -- on the delivery loop --------------------------------------------------------------

    def observe(self, pair: Pair, _number: int, attempt: Attempt) -> None:
        """Count one attempt of this worker (an `AttemptObserver`)."""
        if pair.source.topic in self.exempt:
            return
        now = self.clock()
        mine = self._mine.get(pair.hook.id)
        if mine is None:
            mine = self._mine[pair.hook.id] = _Mine()
        verdict = attempt.verdict
        if verdict.ok:
            mine.last_success, mine.failing_since = now, None
        else:
            if mine.failing_since is None:
                mine.failing_since = now
            mine.last_failure = now
            mine.last_error = verdict.error or verdict.kind or "failed"
        self._changed.add(pair.hook.id)

    def held(self, hook_id: str) -> str | None:
        """Why the pairs of `hook_id` are held back (it is paused), or None."""
        return self._paused.get(hook_id)

    async def run(self, stopping: asyncio.Event) -> None:
        """Report and decide every `hook_health_interval` until `stopping` is set, or until the
        producer failed for good (`fatal`): the worker stops then."""
        interval = self.settings.hook_health_interval
        while not stopping.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)
            try:
                self.tick()
            except Exception:  # a defect of a round must never stop deliveries
                log.exception("hook health: a round failed")
            if self._producer_failed():
                return

    def _producer_failed(self) -> bool:
        """Whether the writer's producer failed for good; said, and kept in `fatal`, if so."""
        error = None if self.writer is None else self.writer.fatal
        if error is None:
            return False
        say_producer_failed(error, "hook health: no report or decision can be written any more")
        self.fatal = error
        return True

    def tick(self) -> None:
        """One round: write the reports that changed, decide from every worker's, export."""
        writer = self.writer
        assert writer is not None
        now = self.clock()
        for hook_id in self._changed:
            writer.report(self._report(hook_id, now))
        self._changed.clear()
        by_hook: dict[str, list[Report]] = {}
        for report in self.follower.reports():
            if report.worker != self.worker:
                by_hook.setdefault(report.hook_id, []).append(report)
        for hook_id in self._mine:
            by_hook.setdefault(hook_id, []).append(self._report(hook_id, now))
        hooks = self.hooks()
        recent = now - ACTIVE_ROUNDS * self.settings.hook_health_interval
        for hook_id, reports in by_hook.items():
            hook = hooks.get(hook_id)
            if hook is None or hook_id in self._writing or decider(reports, recent) != self.worker:
                continue  # (a decision being written is decided on when its write is answered)
            rules = Rules.for_hook(
                hook.pause_after, self.settings.hook_pause_after, self.settings.hook_failing_after
            )
            current = self._decisions.get(hook_id)
            view = merge(reports, now, rules.window, current.floor if current else None)
            decisions = decide(hook_id, hook.tenant, view, rules, current, now)
            if decisions:
                self._writing[hook_id] = len(decisions)
            for decision in decisions:
                log.warning(
                    "hook %s is %s since %s: %s",
                    hook_id,
                    decision.state,
                    iso(decision.since),
                    decision.last_error,
                )
                writer.decide(decision, self._written)
        writer.poll()
        self._export(hooks)

    # -- helpers ---------------------------------------------------------------------------

    def _report(self, hook_id: str, now: float) -> Report:
        mine = self._mine[hook_id]
        return Report(
            hook_id,
            self.worker,
            now,
            mine.last_success,
            mine.failing_since,
            mine.last_failure,
            mine.last_error,
        )

    def _written(self, decision: Decision, taken: bool) -> None:
        """The health topic's answer to a decision this worker wrote (on the delivery loop,
        in `writer.poll`). Taken, it applies here as every other worker reads it (unless a
        later one was read meanwhile, a resume by hand say); not taken, it is not applied at
        all, and the next round decides, and writes, again."""
        left = self._writing.get(decision.hook_id, 1) - 1
        if left > 0:
            self._writing[decision.hook_id] = left
        else:
            self._writing.pop(decision.hook_id, None)
        if not taken:
            log.warning(
                "hook %s: the decision %s was not written to the health topic; deciding again",
                decision.hook_id,
                decision.state,
            )
            return
        known = self._decisions.get(decision.hook_id)
        if known is None or known.at <= decision.at:
            self._on_decision(decision)

    def _on_decision(self, decision: Decision) -> None:
        """A decision read or made (from the follower's thread or the loop: plain dict
        assignments, each atomic)."""
        self._decisions[decision.hook_id] = decision
        if decision.state == "paused":
            self._paused[decision.hook_id] = _why(decision)
        else:
            self._paused.pop(decision.hook_id, None)
        if decision.state == "resumed":  # start afresh: this worker's old failures are done
            mine = self._mine.get(decision.hook_id)
            if mine is not None:
                self._mine[decision.hook_id] = replace(mine, failing_since=None)

    def _export(self, hooks: HookIndex) -> None:
        """`dispatcher_hook_paused` and `dispatcher_hook_failing` for every enabled hook in
        force (0 from the start, so an alert sees a change, not a series appearing); set only
        on change. A disabled hook's are removed: it has no events to dead-letter and no
        attempt to end a spell, so a pause or spell shown would page for good."""
        shown: dict[str, tuple[bool, bool]] = {}
        for hook in hooks:
            if not hook.enabled:
                continue
            decision = self._decisions.get(hook.id)
            state = decision.state if decision is not None else "healthy"
            shown[hook.id] = value = (state == "paused", state == "failing")
            if self._shown.get(hook.id) != value:
                self.metrics.hook_paused.labels(hook.id).set(value[0])
                self.metrics.hook_failing.labels(hook.id).set(value[1])
        for gone in set(self._shown) - set(shown):
            for gauge in (self.metrics.hook_paused, self.metrics.hook_failing):
                with suppress(KeyError):
                    gauge.remove(gone)
        self._shown = shown


def _why(decision: Decision) -> str:
    how = "by hand" if decision.reason == "manual" else "after failing"
    return (
        f"hook {decision.hook_id} is paused ({how}, since {iso(decision.since)}): no request"
        f" made; `dispatcher hooks resume {decision.hook_id} --replay` re-delivers it"
    )
