"""The console's Pause, Resume and Resume-and-replay buttons (admin, CSRF-checked forms)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.api import pausing
from dispatcher.api.pages.common import form_of, redirect, service_of

router = APIRouter(include_in_schema=False)


@router.post("/hooks/{hook_id}/pause", response_model=None)
async def pause_hook(request: Request, hook_id: str) -> RedirectResponse:
    session, _form = await form_of(request)
    await run_in_threadpool(pausing.pause, service_of(request), session.principal, hook_id)
    return redirect("/")


@router.post("/hooks/{hook_id}/resume", response_model=None)
async def resume_hook(request: Request, hook_id: str) -> RedirectResponse:
    """Resume; with `replay=on`, then show the replay of the dead letters held back."""
    session, form = await form_of(request)
    service = service_of(request)
    replay = form.get("replay") == "on"
    _shown, job = await run_in_threadpool(
        pausing.resume, service, session.principal, hook_id, replay
    )
    return redirect("/" if job is None else f"/replays/{job.id}")
