"""Dead letters grouped by hook and error kind, with a replay: a dry run listing what would be
sent, then a confirmation, then the job's progress (the page refreshes itself while it runs)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dispatcher.api import scope
from dispatcher.api.models import ReplayRequest
from dispatcher.api.pages.common import form_of, redirect, render, service_of, session_of
from dispatcher.api.routes import replays
from dispatcher.api.routes.records import letter_view

router = APIRouter(include_in_schema=False)


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letters_page(request: Request, hook: str = "", kind: str = "") -> HTMLResponse:
    session = session_of(request)
    service, caller = service_of(request), session.principal
    scope.named(service, caller, hook or None)
    visible = scope.records(service, caller)
    rows = service.index.letters(hook, kind or None, visible=visible) if hook else []
    return render(
        request,
        "dead_letters.html",
        session,
        groups=service.index.letter_groups(visible=visible),
        hook=hook,
        kind=kind,
        letters=[letter_view(r) for r in rows],
    )


@router.post("/replays", response_model=None)
async def start_replay(request: Request) -> RedirectResponse:
    """A dry run (`dry_run=on`) of one hook's dead letters, or, confirming a dry run
    (`confirm=<its id>`), the replay of exactly what it selected."""
    session, form = await form_of(request)
    if form.get("confirm"):
        job = replays.confirm(service_of(request), session.principal, form["confirm"])
        return redirect(f"/replays/{job['id']}")
    wanted = ReplayRequest(
        hook=form.get("hook") or None,
        error_kind=form.get("kind") or None,
        dry_run=form.get("dry_run") == "on",
    )
    job = replays.start(service_of(request), wanted, session.principal)
    return redirect(f"/replays/{job['id']}")


@router.get("/replays/{replay_id}", response_class=HTMLResponse)
def replay_page(request: Request, replay_id: str) -> HTMLResponse:
    session = session_of(request)
    job = replays.shown_replay(service_of(request), session.principal, replay_id)
    return render(request, "replay.html", session, job=job)
