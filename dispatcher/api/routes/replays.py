"""/api/replays: start a replay (or a dry run) and follow it."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from dispatcher.api.auth import ADMIN, VIEWER
from dispatcher.api.models import Error, Replay, ReplayRequest, Replays
from dispatcher.api.routes import service_of
from dispatcher.api.service import AdminService
from dispatcher.ops.replay.plan import selection_from
from dispatcher.ops.replay.run import ReplayOptions

router = APIRouter(prefix="/api/replays", tags=["replays"])
Service = Annotated[AdminService, Depends(service_of)]


def start(service: AdminService, request: ReplayRequest) -> dict[str, Any]:
    """Start the replay `request` asks for; 422 for a bad selection, 409 naming the running
    replay whose selection overlaps."""
    try:
        selection = selection_from(
            now=time.time(),
            hook=request.hook,
            since=request.since,
            until=request.until,
            error_kind=request.error_kind,
            limit=request.limit,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    job, started = service.replays.start(ReplayOptions(selection, request.rate, request.dry_run))
    if not started:
        raise HTTPException(409, f"replay {job.id} is running on an overlapping selection")
    return job.as_dict()


@router.post(
    "",
    status_code=202,
    response_model=Replay,
    responses={409: {"model": Error}, 422: {"model": Error}},
    dependencies=[Depends(ADMIN)],
)
def start_replay(request: ReplayRequest, service: Service) -> dict[str, Any]:
    return start(service, request)


@router.get("", response_model=Replays, dependencies=[Depends(VIEWER)])
def list_replays(service: Service) -> dict[str, Any]:
    return {"replays": [job.as_dict() for job in service.replays.all()]}


@router.get(
    "/{replay_id}",
    response_model=Replay,
    responses={404: {"model": Error}},
    dependencies=[Depends(VIEWER)],
)
def show_replay(replay_id: str, service: Service) -> dict[str, Any]:
    job = service.replays.get(replay_id)
    if job is None:
        raise HTTPException(404, f"no replay {replay_id!r}")
    return job.as_dict()
