"""Replays started from the admin service: each runs in a thread of its own, its counts readable
meanwhile. Two replays whose selections overlap never run at once (both could send one letter):
the second is refused, naming the first. Dry runs send nothing and are never refused for an
overlap. A running job is never forgotten (the overlap check needs it); of the finished ones the
last `KEPT` are kept, and at most `RUNNING_AT_MOST` jobs run at once, of them at most
`TENANT_RUNNING_AT_MOST` started by one tenant's tokens and `TENANTS_RUNNING_AT_MOST` by
tenants' tokens together (`busy`)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from dispatcher.config.settings import Settings
from dispatcher.errors import DispatcherError, ReplaysBusy
from dispatcher.model.moments import iso
from dispatcher.ops.replay.plan import Plan, Summary
from dispatcher.ops.replay.run import ReplayOptions, run_replay
from dispatcher.pipeline.match import HookIndex

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)
KEPT = 50  # finished jobs remembered
RUNNING_AT_MOST = 16  # replays and dry runs running at once
TENANT_RUNNING_AT_MOST = 4  # of them, started by the tokens of one tenant
TENANTS_RUNNING_AT_MOST = 12  # of them, by the tokens of every tenant together: 4 stay free
PLAN_ROWS = 1000  # rows of a dry run's plan kept (the first); the others only counted


@dataclass(frozen=True, slots=True)
class ReplayJob:
    """One replay's state: `running`, `done` or `failed`, its counts, and a dry run's plan
    (its first `PLAN_ROWS` rows, and how many it left off);
    `tenant`: the tenant of the token that started it (None: a token of every tenant)."""

    id: str
    options: ReplayOptions
    started_at: float
    tenant: str | None = None
    status: str = "running"
    summary: Summary | None = None
    error: str | None = None
    finished_at: float | None = None
    plan: tuple[dict[str, Any], ...] = field(default=())
    plan_left_off: int = 0

    def as_dict(self) -> dict[str, Any]:
        selection = self.options.selection
        return {
            "id": self.id,
            "status": self.status,
            "selection": {
                "hook": selection.hook,
                "since": None if selection.since is None else iso(selection.since),
                "until": None if selection.until is None else iso(selection.until),
                "error_kinds": sorted(selection.error_kinds),
                "limit": selection.limit,
                "tenant": selection.tenant,
            },
            "rate": self.options.rate,
            "dry_run": self.options.dry_run,
            "started_at": iso(self.started_at),
            "finished_at": None if self.finished_at is None else iso(self.finished_at),
            "summary": None if self.summary is None else self.summary.as_dict(),
            "error": self.error,
            "plan": list(self.plan) if self.options.dry_run else None,
            "plan_left_off": self.plan_left_off if self.options.dry_run else None,
        }


class ReplayJobs:
    """Starts replays, keeps those running and the last few finished."""

    def __init__(
        self,
        settings: Settings,
        hooks: Callable[[], HookIndex],
        tracing: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = hooks
        self.tracing = tracing  # the admin service's, when it traces
        self._jobs: dict[str, ReplayJob] = {}
        self._lock = threading.Lock()

    def start(self, options: ReplayOptions, tenant: str | None = None) -> tuple[ReplayJob, bool]:
        """The started job and True; or the running replay whose selection overlaps and False.
        `ReplaysBusy` when as many jobs run already as may run beside one of `tenant` (`busy`)."""
        with self._lock:
            refused = busy([job for job in self._jobs.values() if job.status == "running"], tenant)
            if refused is not None:
                raise ReplaysBusy(refused)
            if not options.dry_run:
                for running in self._jobs.values():
                    if (
                        running.status == "running"
                        and not running.options.dry_run
                        and running.options.selection.overlaps(options.selection)
                    ):
                        return running, False
            job = ReplayJob(uuid.uuid4().hex[:12], options, time.time(), tenant)
            self._jobs[job.id] = job
            self._forget_finished()
        threading.Thread(
            target=self._run, args=(job,), name=f"replay-{job.id}", daemon=True
        ).start()
        return job, True

    def get(self, job_id: str) -> ReplayJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[ReplayJob]:
        with self._lock:
            return list(self._jobs.values())

    def _forget_finished(self) -> None:
        """Drop the oldest finished jobs beyond `KEPT`; running ones stay, whatever their age."""
        finished = [job_id for job_id, job in self._jobs.items() if job.status != "running"]
        for old in finished[:-KEPT]:
            del self._jobs[old]

    def _update(self, job_id: str, **changes: Any) -> None:
        """Record a job's progress or end; never raises, so bookkeeping cannot cut a replay short."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:  # cannot happen while it runs; a lost count must not stop the sending
                log.warning("replay %s: progress for a job no longer kept", job_id)
                return
            self._jobs[job_id] = replace(job, **changes)
            if "finished_at" in changes:
                self._forget_finished()

    def _run(self, job: ReplayJob) -> None:
        job_id = job.id
        try:
            plan, summary = run_replay(
                self.settings,
                self.hooks(),
                job.options,
                lambda now: self._update(job_id, summary=now),
                tracing=self.tracing,
            )
        except (DispatcherError, OSError) as exc:
            self._update(job_id, status="failed", error=str(exc), finished_at=time.time())
            return
        except Exception:
            log.exception("replay %s failed", job_id)
            self._update(job_id, status="failed", error="internal error", finished_at=time.time())
            return
        rows = plan_rows(plan, PLAN_ROWS)
        self._update(
            job_id,
            status="done",
            summary=summary,
            plan=rows,
            plan_left_off=plan.selected - len(rows),
            finished_at=time.time(),
        )


def busy(running: list[ReplayJob], tenant: str | None) -> str | None:
    """Why one more job, started by a token of `tenant` (None: of every tenant), may not run
    beside the `running` ones; None when it may. A replay runs as long as its rate makes it (a
    letter a year, say) and only a restart ends it, so one tenant's tokens hold at most
    `TENANT_RUNNING_AT_MOST` of the places and the tenants' together `TENANTS_RUNNING_AT_MOST`:
    no tenant keeps the other tenants, nor the operator, from replaying."""
    later = "start this one when one of them has ended"
    if len(running) >= RUNNING_AT_MOST:
        return f"{len(running)} replays or dry runs are running, as many as run at once; {later}"
    if tenant is None:
        return None
    own = sum(1 for job in running if job.tenant == tenant)
    if own >= TENANT_RUNNING_AT_MOST:
        return (
            f"{own} replays or dry runs of tenant {tenant} are running, as many as one tenant"
            f" runs at once; {later}"
        )
    if sum(1 for job in running if job.tenant is not None) >= TENANTS_RUNNING_AT_MOST:
        return f"as many replays or dry runs of tenants are running as run at once; {later}"
    return None


def plan_rows(plan: Plan, at_most: int | None = None) -> tuple[dict[str, Any], ...]:
    """A plan as JSON rows: every selected letter (the first `at_most`), the id and type of the
    event it holds (None when it holds none), and what the replay does (or would do) with it."""
    sent = ((letter, "send") for letter in plan.send)
    rows = islice(chain(sent, plan.skip), at_most)
    return tuple(
        {
            "letter": letter.where,
            "event_id": plan.event_of(letter)[0] or None,
            "event_type": plan.event_of(letter)[1] or None,
            "hook_id": letter.hook_id,
            "error_kind": letter.error_kind,
            "failed_at": None if letter.failed_at is None else iso(letter.failed_at),
            "webhook_id": letter.idempotency_key,
            "action": action,
        }
        for letter, action in rows
    )
