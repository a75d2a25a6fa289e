"""/api/hooks: the hooks in force (masked), writes to the hook store, and trying a hook; a
tenant's token reaches only its tenant's hooks (`dispatcher.api.scope`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.api import editing, pausing, scope
from dispatcher.api.auth import AsAdmin, AsViewer
from dispatcher.api.models import (
    Deleted,
    Error,
    HookHealth,
    HookList,
    HookShown,
    Pending,
    Refusal,
    Resumed,
    ResumeRequest,
    TrialRequest,
    TrialResult,
)
from dispatcher.api.openapi import FORBIDDEN, HOOK_BODY, INVALID, UNAUTHORIZED, UNSEEN
from dispatcher.api.routes import service_of
from dispatcher.api.service import AdminService
from dispatcher.errors import DecodeError
from dispatcher.hooks.describe import describe
from dispatcher.hooks.numbers import read_json
from dispatcher.model.event import Event
from dispatcher.model.hook import Hook
from dispatcher.ops import trial

router = APIRouter(prefix="/api/hooks", tags=["hooks"], responses=UNAUTHORIZED)
Service = Annotated[AdminService, Depends(service_of)]
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    202: {"model": Pending, "description": "Stored; not yet read back by this service."},
    **FORBIDDEN,
    400: {"model": Error, "description": "The body is not JSON, or nests too deeply to read."},
    409: {"model": Error, "description": "Conflicts with the store or the hooks file."},
    422: {"model": Refusal, "description": "Every problem of the definition."},
}


def shown(service: AdminService, hook: Hook) -> dict[str, Any]:
    """A hook as `hooks show` shows it, secrets masked, with where it is defined and, when
    the workers cannot deliver it, why."""
    document: dict[str, Any] = json.loads(json.dumps(describe(hook), default=str))
    return {**document, "source": service.source_of(hook.id), "unusable": hook.unusable}


@router.get("", response_model=HookList)
def list_hooks(service: Service, caller: AsViewer) -> dict[str, Any]:
    return {"hooks": [shown(service, h) for h in scope.hooks(service, caller)]}


@router.get("/{hook_id}", response_model=HookShown, responses={404: {"model": Error}})
def show_hook(hook_id: str, service: Service, caller: AsViewer) -> dict[str, Any]:
    return shown(service, scope.hook(service, caller, hook_id))


@router.post(
    "",
    status_code=201,
    response_model=HookShown,
    responses=WRITE_ERRORS,
    openapi_extra=HOOK_BODY,
)
async def create_hook(request: Request, service: Service, caller: AsAdmin) -> Any:
    raw = await _json(request)
    return await run_in_threadpool(_write, service, raw, None, caller.tenant)


@router.put(
    "/{hook_id}",
    response_model=HookShown,
    responses={
        **WRITE_ERRORS,
        201: {"model": HookShown, "description": "Created."},
        **UNSEEN,
    },
    openapi_extra=HOOK_BODY,
)
async def put_hook(hook_id: str, request: Request, service: Service, caller: AsAdmin) -> Any:
    scope.not_hidden(service, caller, hook_id)
    raw = await _json(request)
    return await run_in_threadpool(_write, service, raw, hook_id, caller.tenant)


@router.delete(
    "/{hook_id}",
    response_model=Deleted,
    responses={**FORBIDDEN, 404: {"model": Error}, 409: {"model": Error}},
)
def delete_hook(hook_id: str, service: Service, caller: AsAdmin) -> dict[str, Any]:
    """The store's tombstone; `in_force` says the hooks file's hook of the id is in force again,
    to a caller who sees that hook (to a tenant's token, one without its tenant does not exist)."""
    scope.named(service, caller, hook_id)
    refused = editing.delete(service, hook_id)
    if refused is not None:
        raise HTTPException(refused.status, refused.error)
    remaining = service.hooks().get(hook_id)
    shown = remaining is not None and scope.sees(caller, remaining)
    return {"deleted": hook_id, "in_force": "hooks file" if shown else None}


@router.post(
    "/{hook_id}/test",
    response_model=TrialResult,
    response_model_exclude_none=True,
    responses={**FORBIDDEN, 404: {"model": Error}, **INVALID},
)
def test_hook(
    hook_id: str, body: TrialRequest, service: Service, caller: AsAdmin
) -> dict[str, Any]:
    """The exact request the hook renders for the event (masked) and why the event is not for
    the hook, if it is not; with `send`, the verdict, or why nothing was sent (an event the
    dispatcher would not send there). A tenant's token tries only hooks that reach no further
    than its tenant (else 422)."""
    hook = scope.hook(service, caller, hook_id)
    refused = editing.tried(service, hook_id, caller.tenant)
    if refused is not None:
        raise HTTPException(refused.status, refused.error)
    try:
        event = Event.from_dict(body.event)
    except DecodeError as exc:
        raise HTTPException(422, f"event: {exc}") from None
    tried = trial.prepare(hook, event)
    result: dict[str, Any] = {"excluded": list(tried.excluded) or None}
    if tried.request is None or tried.shown is None:
        failure = tried.failure
        assert failure is not None
        verdict = {"ok": False, "error_kind": failure.kind, "error": str(failure)}
        return {**result, "verdict": verdict}
    result["request"] = tried.shown.as_dict()
    if body.send:
        sent = trial.send(service.settings, hook, tried)
        if isinstance(sent, trial.NotSent):
            result["not_sent"] = sent.reason
        else:
            result["verdict"] = sent.as_dict()
    return result


@router.get("/{hook_id}/health", response_model=HookHealth, responses={404: {"model": Error}})
def hook_health(hook_id: str, service: Service, caller: AsViewer) -> dict[str, Any]:
    """Whether the hook is failing or paused for the whole cluster, since when, and why."""
    hook = scope.hook(service, caller, hook_id)
    return pausing.health_of(hook.id, service.decisions().get(hook.id))


@router.post(
    "/{hook_id}/pause",
    response_model=HookHealth,
    responses={
        **FORBIDDEN,
        404: {"model": Error},
        409: {"model": Error, "description": "This service does not follow the health topic."},
    },
)
async def pause_hook(hook_id: str, service: Service, caller: AsAdmin) -> dict[str, Any]:
    """Pause the hook on every worker: its events are dead-lettered (kind paused), no request."""
    return await run_in_threadpool(pausing.pause, service, caller, hook_id)


@router.post(
    "/{hook_id}/resume",
    response_model=Resumed,
    responses={**FORBIDDEN, 404: {"model": Error}, 409: {"model": Error}, 429: {"model": Error}},
)
async def resume_hook(
    hook_id: str, service: Service, caller: AsAdmin, body: ResumeRequest | None = None
) -> dict[str, Any]:
    """Lift the pause everywhere; with `replay`, re-deliver the hook's dead letters since the
    pause began (a replay job, followed at /api/replays/{id})."""
    replay = body is not None and body.replay
    shown_health, job = await run_in_threadpool(pausing.resume, service, caller, hook_id, replay)
    return {**shown_health, "replay": None if job is None else job.as_dict()}


async def _json(request: Request) -> Any:
    try:
        return read_json(await request.body() or b"null")  # numbers keep their text
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None
    except RecursionError:
        raise HTTPException(400, "the body nests too deeply to read") from None


def _write(service: AdminService, raw: Any, path_id: str | None, tenant: str | None) -> Any:
    """Check and save `raw` (POST when `path_id` is None, else PUT) for a caller limited to
    `tenant`, off the event loop: it waits for Kafka."""
    definition = editing.checked(
        service, raw, path_id=path_id, create=path_id is None, tenant=tenant
    )
    if isinstance(definition, editing.Refused):
        problems = [
            {"path": p.path, "message": p.message, "line": p.line} for p in definition.problems
        ]
        body: dict[str, Any] = {"error": definition.error}
        if problems or definition.status == 422:
            body["problems"] = problems
        return JSONResponse(body, definition.status)
    saved = editing.save(service, definition)
    if not saved.in_force:
        return JSONResponse({"id": saved.hook_id, "status": "stored, not yet in force here"}, 202)
    hook = service.hooks().get(saved.hook_id)
    return JSONResponse(
        None if hook is None else shown(service, hook), 201 if saved.created else 200
    )
