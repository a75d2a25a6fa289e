"""Dead letters grouped by hook and error kind, with a replay: a dry run listing what would be
sent, then a confirmation, then the job's progress (the page refreshes itself while it runs)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dispatcher.api.models import ReplayRequest
from dispatcher.api.pages.common import form_of, redirect, render, service_of, session_of
from dispatcher.api.routes import replays
from dispatcher.api.routes.records import letter_view

router = APIRouter(include_in_schema=False)


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letters_page(request: Request, hook: str = "", kind: str = "") -> HTMLResponse:
    session = session_of(request)
    index = service_of(request).index
    letters = [letter_view(r) for r in index.letters(hook, kind or None)] if hook else []
    return render(
        request,
        "dead_letters.html",
        session,
        groups=index.letter_groups(),
        hook=hook,
        kind=kind,
        letters=letters,
    )


@router.post("/replays", response_model=None)
async def start_replay(request: Request) -> RedirectResponse:
    """A dry run (`dry_run=on`) or, once confirmed, the replay of one hook's dead letters."""
    _session, form = await form_of(request)
    wanted = ReplayRequest(
        hook=form.get("hook") or None,
        error_kind=form.get("kind") or None,
        dry_run=form.get("dry_run") == "on",
    )
    job = replays.start(service_of(request), wanted)
    return redirect(f"/replays/{job['id']}")


@router.get("/replays/{replay_id}", response_class=HTMLResponse)
def replay_page(request: Request, replay_id: str) -> HTMLResponse:
    session = session_of(request)
    job = service_of(request).replays.get(replay_id)
    if job is None:
        raise HTTPException(404, f"no replay {replay_id!r}")
    return render(request, "replay.html", session, job=job.as_dict())
