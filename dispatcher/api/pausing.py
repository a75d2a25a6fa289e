"""Pause and resume a hook from the admin service (the API and the console alike): admin role,
a tenant's token only its tenant's hooks, a resume with replay started as a replay job over the
dead letters the caller may replay."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from dispatcher.api import scope
from dispatcher.api.auth import Principal
from dispatcher.api.service import AdminService
from dispatcher.errors import ConfigError, ReplaysBusy
from dispatcher.model.health import Decision
from dispatcher.model.moments import iso
from dispatcher.ops.pausing import SETTLE_SECONDS, Change, Decisions, pause_hook, resume_hook
from dispatcher.ops.replay.jobs import ReplayJob
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.ops.replay.selection import Selection


def health_of(hook_id: str, decision: Decision | None) -> dict[str, Any]:
    """The API's view of a hook's health (`HookHealth`)."""
    if decision is None:
        return {"hook": hook_id, "state": "healthy", "since": None, "at": None,
                "reason": None, "last_error": None}  # fmt: skip
    return {
        "hook": hook_id,
        "state": decision.state,
        "since": iso(decision.since),
        "at": iso(decision.at),
        "reason": decision.reason,
        "last_error": decision.last_error or None,
    }


def pause(service: AdminService, caller: Principal, hook_id: str) -> dict[str, Any]:
    """Pause `hook_id` (blocking: it waits for Kafka); 404 for a hook the caller does not see."""
    scope.hook(service, caller, hook_id)
    change = pause_hook(_decisions(service), service.hooks(), hook_id)
    service.read_back(change.decision)
    return _shown(change)


def resume(
    service: AdminService, caller: Principal, hook_id: str, replay: bool
) -> tuple[dict[str, Any], ReplayJob | None]:
    """Lift the pause of `hook_id` (409 when it is not paused); with `replay`, start the replay
    of its dead letters since the pause began (409 when an overlapping replay runs, 429 when as
    many replays run as the service allows)."""
    scope.hook(service, caller, hook_id)
    try:
        change = resume_hook(
            _decisions(service),
            service.hooks(),
            hook_id,
            settle=SETTLE_SECONDS if replay else 0.0,
        )
    except ConfigError as exc:
        raise HTTPException(409, str(exc)) from None
    service.read_back(change.decision)
    if not replay:
        return _shown(change), None
    selection = change.replay
    visible = scope.records(service, caller)
    if visible is not None:  # a tenant replays its events' letters of its hooks only
        selection = Selection(
            hook=selection.hook,
            since=selection.since,
            tenant=visible.tenant,
            hooks=visible.hooks,
            hook_tenant=visible.tenant,
        )
    try:
        job, started = service.replays.start(ReplayOptions(selection), caller.tenant)
    except ReplaysBusy as exc:
        raise HTTPException(429, f"{hook_id} resumed, but not replayed: {exc}") from None
    if not started:
        raise HTTPException(
            409, f"{hook_id} resumed, but not replayed: an overlapping replay is running"
        )
    return _shown(change), job


def _decisions(service: AdminService) -> Decisions:
    if service.pauses is None:
        raise HTTPException(
            409, "pausing needs the health topic, which this service does not follow"
        )
    return service.pauses


def _shown(change: Change) -> dict[str, Any]:
    return {**health_of(change.decision.hook_id, change.decision), "changed": change.changed}
