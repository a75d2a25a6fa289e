"""/api/replays: start a replay (or a dry run) and follow it. A tenant's token replays only
dead letters of its tenant's events written for its hooks (a hook of its tenant then and
now), and sees only the replays it started."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from dispatcher.api import scope
from dispatcher.api.auth import AsAdmin, AsViewer, Principal
from dispatcher.api.models import Error, Replay, ReplayRequest, Replays
from dispatcher.api.openapi import FORBIDDEN, INVALID, UNAUTHORIZED
from dispatcher.api.routes import service_of
from dispatcher.api.service import AdminService
from dispatcher.errors import ReplaysBusy
from dispatcher.ops.replay.jobs import ReplayJob
from dispatcher.ops.replay.run import ReplayOptions
from dispatcher.ops.replay.selection import selection_from

router = APIRouter(prefix="/api/replays", tags=["replays"], responses=UNAUTHORIZED)
Service = Annotated[AdminService, Depends(service_of)]


def start(service: AdminService, request: ReplayRequest, caller: Principal) -> dict[str, Any]:
    """Start the replay `request` asks for; 404 for a hook the caller does not see, 422 for a
    bad selection, 409 naming the running replay whose selection overlaps (when the caller sees
    it), 429 when as many replays run as the service allows."""
    scope.named(service, caller, request.hook)
    visible = scope.records(service, caller)  # a tenant's: its letters of its hooks only
    try:
        selection = selection_from(
            now=time.time(),
            hook=request.hook,
            since=request.since,
            until=request.until,
            error_kind=request.error_kind,
            limit=request.limit,
            tenant=None if visible is None else visible.tenant,
            hooks=None if visible is None else visible.hooks,
            hook_tenant=None if visible is None else visible.tenant,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return _launch(service, ReplayOptions(selection, request.rate, request.dry_run), caller)


def confirm(service: AdminService, caller: Principal, dry_run_id: str) -> dict[str, Any]:
    """Replay what dry run `dry_run_id` selected, as it resolved it (an age such as `2h` stays
    the time it meant then), at its rate: 404 for a dry run the caller does not see, 409 for one
    not finished; then as `start`. A tenant's selection is narrowed to the hooks it sees now."""
    dry = service.replays.get(dry_run_id)
    if dry is None or not _sees(caller, dry) or not dry.options.dry_run:
        raise HTTPException(404, f"no dry run {dry_run_id!r}")
    if dry.status != "done":
        raise HTTPException(409, f"dry run {dry_run_id} has not finished well ({dry.status})")
    selection = dry.options.selection
    scope.named(service, caller, selection.hook)
    visible = scope.records(service, caller)
    if visible is not None:
        hooks = visible.hooks if selection.hooks is None else selection.hooks & visible.hooks
        selection = replace(
            selection, tenant=visible.tenant, hooks=hooks, hook_tenant=visible.tenant
        )
    return _launch(service, replace(dry.options, selection=selection, dry_run=False), caller)


def _launch(service: AdminService, options: ReplayOptions, caller: Principal) -> dict[str, Any]:
    try:
        job, started = service.replays.start(options, caller.tenant)
    except ReplaysBusy as exc:
        raise HTTPException(429, str(exc)) from None
    if not started:
        running = f"replay {job.id}" if _sees(caller, job) else "another replay"
        raise HTTPException(409, f"{running} is running on an overlapping selection")
    return job.as_dict()


def _sees(caller: Principal, job: ReplayJob) -> bool:
    return caller.tenant is None or job.tenant == caller.tenant


@router.post(
    "",
    status_code=202,
    response_model=Replay,
    responses={
        **FORBIDDEN,
        404: {"model": Error},
        409: {"model": Error},
        **INVALID,
        429: {"model": Error},
    },
)
def start_replay(request: ReplayRequest, service: Service, caller: AsAdmin) -> dict[str, Any]:
    return start(service, request, caller)


@router.get("", response_model=Replays)
def list_replays(service: Service, caller: AsViewer) -> dict[str, Any]:
    return {"replays": [job.as_dict() for job in service.replays.all() if _sees(caller, job)]}


@router.get(
    "/{replay_id}",
    response_model=Replay,
    responses={404: {"model": Error}},
)
def show_replay(replay_id: str, service: Service, caller: AsViewer) -> dict[str, Any]:
    return shown_replay(service, caller, replay_id)


def shown_replay(service: AdminService, caller: Principal, replay_id: str) -> dict[str, Any]:
    """Replay `replay_id` as the caller may see it; 404 when it may not."""
    job = service.replays.get(replay_id)
    if job is None or not _sees(caller, job):
        raise HTTPException(404, f"no replay {replay_id!r}")
    return job.as_dict()
